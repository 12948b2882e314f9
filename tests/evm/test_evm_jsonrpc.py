"""Ethereum JSON-RPC at POST /jsonrpc, driven the way web3 libraries drive it."""

from __future__ import annotations

from pathlib import Path

from consortia import __version__
from consortia.api.jsonrpc import logs_bloom
from consortia.types.eth import eth_chain_id, keccak256, sign_eth_transaction
from tests.node.conftest import Harness, run_node

from .evm_kit import (
    ALICE,
    ALICE_KEY,
    BOB,
    BOB_KEY,
    PROBE_CODE,
    TRANSFER_TOPIC,
    address_word,
    call_data,
    token_deploy_data,
)
from .node_kit import permit
from .rpc_kit import receipt, result, rpc


def test_json_rpc_deploys_transfers_and_reads(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        cfg = h.node.config
        chain_id = eth_chain_id(cfg.chain_id, cfg.channel)
        assert await result(h, "eth_chainId") == hex(chain_id)
        assert await result(h, "net_version") == str(chain_id)
        assert await result(h, "web3_clientVersion") == f"consortia/v{__version__}"
        await permit(h, ALICE, "org1")
        assert int(await result(h, "eth_blockNumber"), 16) == h.node.ledger.height

        def raw(nonce: int, to: bytes | None, data: bytes, key: bytes = ALICE_KEY) -> str:
            signed = sign_eth_transaction(
                key, chain_id=chain_id, nonce=nonce, gas=1_000_000, to=to, data=data
            )
            return "0x" + signed.hex()

        deploy = raw(0, None, token_deploy_data("Coin", "C", 5_000))
        tx_hash = await result(h, "eth_sendRawTransaction", deploy)
        assert tx_hash == "0x" + keccak256(bytes.fromhex(deploy[2:])).hex()
        created = await receipt(h, tx_hash)
        assert created["status"] == "0x1" and created["from"] == "0x" + ALICE.hex() and created["to"] is None
        token = created["contractAddress"]
        assert len(await result(h, "eth_getCode", token, "latest")) > 100

        sent = await receipt(
            h,
            await result(
                h,
                "eth_sendRawTransaction",
                raw(1, bytes.fromhex(token[2:]), call_data("transfer(address,uint256)", BOB, 40)),
            ),
        )
        assert sent["status"] == "0x1"
        assert int(sent["gasUsed"], 16) == int(sent["cumulativeGasUsed"], 16) > 21_000
        (log,) = sent["logs"]
        assert log["address"] == token
        assert log["topics"] == [
            "0x" + t.hex() for t in (TRANSFER_TOPIC, address_word(ALICE), address_word(BOB))
        ]
        assert log["logIndex"] == "0x0" and log["transactionHash"] == sent["transactionHash"]
        topics = [TRANSFER_TOPIC, address_word(ALICE), address_word(BOB)]
        assert sent["logsBloom"] == "0x" + logs_bloom([(bytes.fromhex(token[2:]), topics)]).hex()
        assert sent["logsBloom"] != "0x" + "00" * 256

        balance = await result(
            h, "eth_call", {"to": token, "data": "0x" + call_data("balanceOf(address)", BOB).hex()}, "latest"
        )
        assert int(balance, 16) == 40
        assert await result(h, "eth_getTransactionCount", "0x" + ALICE.hex(), "pending") == "0x2"
        assert await result(h, "eth_getBalance", "0x" + ALICE.hex(), "latest") == "0x0"

        # A revert surfaces as geth reports it: code 3, the reason, the revert data.
        probe = await receipt(h, await result(h, "eth_sendRawTransaction", raw(2, None, PROBE_CODE)))
        failing = {"to": probe["contractAddress"], "data": "0x" + call_data("fail(string)", "boom").hex()}
        error = (await rpc(h, "eth_call", failing))["error"]
        assert (error["code"], error["message"]) == (3, "execution reverted: boom")
        assert error["data"].startswith("0x08c379a0")

        # Refusals carry standard codes and the admission code.
        refused = (await rpc(h, "eth_sendRawTransaction", raw(0, bytes(20), b"", key=BOB_KEY)))["error"]
        assert refused["code"] == -32000 and refused["data"] == {"code": "not_permitted"}
        replay = (await rpc(h, "eth_sendRawTransaction", deploy))["error"]
        assert replay["data"] == {"code": "duplicate_transaction"}
        assert (await rpc(h, "eth_getBalance", "0x" + ALICE.hex(), "0x1"))["error"]["code"] == -32000
        assert (await rpc(h, "eth_getBalance", "0x1234"))["error"]["code"] == -32602
        assert (await rpc(h, "eth_mine"))["error"]["code"] == -32601
        assert await result(h, "eth_getTransactionReceipt", "0x" + "ab" * 32) is None

        parse = await h.http.post("/jsonrpc", content=b"{nope")
        assert parse.json()["error"]["code"] == -32700
        batch = await h.http.post(
            "/jsonrpc",
            json=[
                {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},  # a notification
                {"jsonrpc": "2.0", "id": 2, "method": "net_version"},
            ],
        )
        assert [a["id"] for a in batch.json()] == [1, 2]
        assert (await h.http.post("/jsonrpc", json={"id": 1})).json()["error"]["code"] == -32600

    run_node(evm_crypto_dir, tmp_path / "net", body)
