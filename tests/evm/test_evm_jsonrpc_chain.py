"""JSON-RPC blocks, transactions, state, gas estimation and fees against a running node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from consortia.api.jsonrpc.objects import tx_object
from consortia.execution.evm.outcome import block_gas_limit
from consortia.types import STATUS_OK
from consortia.types.eth import decode_eth_transaction, keccak256
from tests.node.conftest import Harness, run_node

from .evm_kit import ALICE, ALICE_KEY, BOB, PROBE_CODE, EvmChain, call_data, token_deploy_data, word
from .node_kit import permit
from .rpc_kit import Wallet, error, receipt, result, rpc


def _probe_slot(key: int) -> int:
    """Storage slot of slots[key] in Probe.sol (the mapping is state variable 1)."""
    return int.from_bytes(keccak256(word(key) + word(1)), "big")


def test_node_and_fee_methods(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        assert await result(h, "net_listening") is True
        assert await result(h, "eth_syncing") is False
        assert await result(h, "eth_accounts") == []
        assert await result(h, "eth_gasPrice") == "0x0"
        assert await result(h, "eth_maxPriorityFeePerGas") == "0x0"
        assert await result(h, "net_peerCount") == "0x0"
        assert await result(h, "web3_sha3", "0x68656c6c6f") == "0x" + keccak256(b"hello").hex()
        await permit(h, ALICE, "org1")  # three blocks
        head = int(await result(h, "eth_blockNumber"), 16)
        assert head == h.node.ledger.height >= 3

        fees = await result(h, "eth_feeHistory", "0x2", "latest", [25, 75])
        assert fees == {
            "oldestBlock": hex(head - 1),
            "baseFeePerGas": ["0x0"] * 3,
            "gasUsedRatio": [0.0, 0.0],
            "reward": [["0x0", "0x0"], ["0x0", "0x0"]],
        }
        clipped = await result(h, "eth_feeHistory", 100, "0x1")  # plain integers are accepted too
        assert (
            clipped["oldestBlock"] == "0x0" and len(clipped["gasUsedRatio"]) == 2 and "reward" not in clipped
        )
        for bad in (["0x0", "latest"], ["0x401", "latest"], ["zz", "latest"], ["0x2", "latest", [75, 25]]):
            assert (await error(h, "eth_feeHistory", *bad))["code"] == -32602, bad
        assert (await error(h, "eth_feeHistory", "0x1", "latest", [101]))["code"] == -32602

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_blocks_transactions_storage_and_estimates(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)

        # Deploy with the estimate: it must be enough, and not far above what is used.
        deploy_data = token_deploy_data("Coin", "C", 1_000)
        estimate = int(
            await result(
                h, "eth_estimateGas", {"from": "0x" + ALICE.hex(), "data": "0x" + deploy_data.hex()}
            ),
            16,
        )
        created = await alice.send_and_wait(None, deploy_data, gas=estimate)
        assert created["status"] == "0x1"
        assert int(created["gasUsed"], 16) <= estimate <= int(created["gasUsed"], 16) * 1.1
        probe_receipt = await alice.send_and_wait(None, PROBE_CODE)
        probe = bytes.fromhex(probe_receipt["contractAddress"][2:])

        store = call_data("store(uint256,uint256)", 5, 99)
        call = {"from": "0x" + ALICE.hex(), "to": "0x" + probe.hex(), "data": "0x" + store.hex()}
        estimate = int(await result(h, "eth_estimateGas", call), 16)
        stored = await alice.send_and_wait(probe, store, gas=estimate)
        assert stored["status"] == "0x1" and int(stored["gasUsed"], 16) <= estimate
        # One gas less than the gas used cannot succeed: the estimate is no lower than that.
        assert estimate >= int(stored["gasUsed"], 16)
        plain = {"from": "0x" + ALICE.hex(), "to": "0x" + BOB.hex()}
        assert 21_000 <= int(await result(h, "eth_estimateGas", plain), 16) <= 21_000 * 1.015 + 1
        assert int(await result(h, "eth_estimateGas", {**plain, "gas": "0x5208"}), 16) == 21_000

        failing = {"to": "0x" + probe.hex(), "data": "0x" + call_data("fail(string)", "nope").hex()}
        reverted = await error(h, "eth_estimateGas", failing)
        assert (reverted["code"], reverted["message"]) == (3, "execution reverted: nope")
        assert reverted["data"].startswith("0x08c379a0")
        spin = {"to": "0x" + probe.hex(), "data": "0x" + call_data("spin()").hex(), "gas": hex(200_000)}
        endless = await error(h, "eth_estimateGas", spin)
        assert endless["code"] == -32000 and "200000" in endless["message"]

        # Storage: the slot store() wrote, an unset one, and the counter at slot 0.
        slot = hex(_probe_slot(5))
        assert (
            await result(h, "eth_getStorageAt", "0x" + probe.hex(), slot, "latest") == "0x" + word(99).hex()
        )
        assert (
            await result(h, "eth_getStorageAt", "0x" + probe.hex(), hex(_probe_slot(6))) == "0x" + "00" * 32
        )
        assert await result(h, "eth_getStorageAt", "0x" + probe.hex(), "0x0", "latest") == "0x" + "00" * 32
        old = await error(h, "eth_getStorageAt", "0x" + probe.hex(), slot, "0x1")
        assert old["code"] == -32000

        # The transaction, by hash and by block position; the block, by number and hash.
        tx_hash = stored["transactionHash"]
        tx = await result(h, "eth_getTransactionByHash", tx_hash)
        assert tx["hash"] == tx_hash and tx["blockHash"] == stored["blockHash"]
        assert (
            tx["blockNumber"] == stored["blockNumber"]
            and tx["transactionIndex"] == stored["transactionIndex"]
        )
        assert tx["from"] == "0x" + ALICE.hex() and tx["to"] == "0x" + probe.hex()
        assert tx["input"] == "0x" + store.hex() and tx["gas"] == hex(estimate) and tx["nonce"] == "0x2"
        assert tx["type"] == "0x2" and tx["value"] == "0x0"
        number = stored["blockNumber"]
        by_number = await result(h, "eth_getBlockByNumber", number, False)
        assert by_number["hash"] == stored["blockHash"] and by_number["number"] == number
        assert tx_hash in by_number["transactions"]
        assert (
            by_number["gasLimit"] == hex(block_gas_limit(h.node.config))
            and by_number["gasUsed"] == stored["cumulativeGasUsed"]
        )
        assert by_number["logsBloom"] == stored["logsBloom"] and int(by_number["size"], 16) > 0
        assert by_number["timestamp"] == hex(h.node.ledger.block(int(number, 16)).header.timestamp_ms // 1000)
        full = await result(h, "eth_getBlockByHash", stored["blockHash"], True)
        assert full["transactions"] == [tx] and {k: v for k, v in full.items() if k != "transactions"} == {
            k: v for k, v in by_number.items() if k != "transactions"
        }
        index = stored["transactionIndex"]
        assert await result(h, "eth_getTransactionByBlockNumberAndIndex", number, index) == tx
        assert await result(h, "eth_getTransactionByBlockHashAndIndex", stored["blockHash"], index) == tx
        assert await result(h, "eth_getTransactionByBlockNumberAndIndex", number, "0x9") is None
        assert await result(h, "eth_getBlockTransactionCountByNumber", number) == "0x1"
        assert await result(h, "eth_getBlockTransactionCountByHash", stored["blockHash"]) == "0x1"
        assert await result(h, "eth_getUncleCountByBlockNumber", number) == "0x0"
        assert await result(h, "eth_getBlockReceipts", number) == [stored]
        assert await result(h, "eth_getBlockReceipts", stored["blockHash"]) == [stored]

        head = h.node.ledger.height
        latest = await result(h, "eth_getBlockByNumber", "latest", False)
        assert latest["number"] == hex(head)
        for tag in ("pending", "safe", "finalized"):
            assert (await result(h, "eth_getBlockByNumber", tag, False))["hash"] == latest["hash"]
        genesis = await result(h, "eth_getBlockByNumber", "earliest", True)
        assert genesis["number"] == "0x0" and genesis["transactions"] == [] and genesis["gasUsed"] == "0x0"
        assert genesis["parentHash"] == "0x" + "00" * 32
        block1 = await result(h, "eth_getBlockByNumber", "0x1", False)
        assert block1["parentHash"] == genesis["hash"] and block1["transactions"] == []  # native only
        assert await result(h, "eth_getBlockTransactionCountByNumber", "0x1") == "0x0"
        assert await result(h, "eth_getBlockByNumber", hex(head + 5), False) is None
        assert await result(h, "eth_getBlockByHash", "0x" + "ab" * 32, False) is None
        assert await result(h, "eth_getBlockTransactionCountByHash", "0x" + "ab" * 32) is None
        assert await result(h, "eth_getTransactionByHash", "0x" + "ab" * 32) is None

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_a_block_mixing_native_and_ethereum_transactions(evm_crypto_dir: Path, tmp_path: Path) -> None:
    """Both kinds in one channel block: the native API lists both, the Ethereum view only its own,
    numbered densely; and a pending transaction has no block yet."""

    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)
        admin = h.who("org1", "admin@org1")
        for _ in range(20):  # the engine cuts blocks every few ms: retry until both share one
            natives = [h.sign(admin, "token", "issue", "org1/mix", 1).raw for _ in range(2)]
            eth_raws = [alice.raw(BOB), alice.raw(BOB)]
            sent = await asyncio.gather(
                h.submit(natives[0], wait=False),
                result(h, "eth_sendRawTransaction", eth_raws[0]),
                h.submit(natives[1], wait=False),
                result(h, "eth_sendRawTransaction", eth_raws[1]),
            )
            receipts = [await receipt(h, sent[1]), await receipt(h, sent[3])]
            native_ids = [sent[0].json()["tx_id"], sent[2].json()["tx_id"]]
            for tx_id in native_ids:
                done = await h.http.get(f"/v1/channels/main/transactions/{tx_id}", params={"wait": "true"})
                assert done.json()["status"] == "committed"
            heights = {int(r["blockNumber"], 16) for r in receipts}
            heights |= {h.node.ledger.tx_location(bytes.fromhex(t))[0] for t in native_ids}  # type: ignore[index]
            if len(heights) == 1:
                break
        else:
            raise AssertionError("never got both kinds into one block")
        height = heights.pop()
        native_block = (await h.http.get(f"/v1/channels/main/blocks/{height}")).json()
        kinds = [t.get("kind", "native") for t in native_block["transactions"]]
        assert sorted(kinds) == ["eth", "eth", "native", "native"]
        eth_block = await result(h, "eth_getBlockByNumber", hex(height), True)
        listed = eth_block["transactions"]
        in_native_order = [t["tx_id"] for t in native_block["transactions"] if t.get("kind") == "eth"]
        assert [t["hash"] for t in listed] == ["0x" + t for t in in_native_order]
        assert [t["transactionIndex"] for t in listed] == ["0x0", "0x1"]
        by_hash = {r["transactionHash"]: r for r in receipts}
        assert [by_hash[t["hash"]]["transactionIndex"] for t in listed] == ["0x0", "0x1"]
        first, second = (by_hash[t["hash"]] for t in listed)
        assert int(second["cumulativeGasUsed"], 16) == int(first["gasUsed"], 16) + int(second["gasUsed"], 16)
        assert eth_block["gasUsed"] == second["cumulativeGasUsed"]
        assert await result(h, "eth_getBlockTransactionCountByNumber", hex(height)) == "0x2"

        # Looked up at once, a transaction is still in the pool (no block yet) or already
        # committed; either way it is found, and once committed it carries its block.
        raw = alice.raw(BOB)
        tx_hash = await result(h, "eth_sendRawTransaction", raw)
        early = await result(h, "eth_getTransactionByHash", tx_hash)
        decoded = decode_eth_transaction(bytes.fromhex(raw[2:]))
        assert early["hash"] == tx_hash and early["nonce"] == hex(decoded.nonce)
        assert early == tx_object(decoded, None, None) or early["blockHash"] is not None
        done = await receipt(h, tx_hash)
        late = await result(h, "eth_getTransactionByHash", tx_hash)
        assert (late["blockHash"], late["transactionIndex"]) == (done["blockHash"], done["transactionIndex"])
        assert {k: v for k, v in late.items() if not k.startswith(("block", "transactionIndex"))} == {
            k: v for k, v in early.items() if not k.startswith(("block", "transactionIndex"))
        }

    run_node(evm_crypto_dir, tmp_path / "net", body)


BAD_INPUT: list[tuple[str, list[Any]]] = [
    ("web3_sha3", []),
    ("web3_sha3", ["hello"]),
    ("eth_getBalance", []),
    ("eth_getBalance", ["0x1234", "latest"]),
    ("eth_getBalance", ["0x" + "11" * 20, "lately"]),
    ("eth_getBalance", ["0x" + "11" * 20, "latest", "extra"]),
    ("eth_getTransactionCount", [42]),
    ("eth_getCode", ["0x" + "zz" * 20]),
    ("eth_getStorageAt", ["0x" + "11" * 20]),
    ("eth_getStorageAt", ["0x" + "11" * 20, "0x" + "1" * 65]),
    ("eth_getStorageAt", ["0x" + "11" * 20, "slot"]),
    ("eth_call", []),
    ("eth_call", ["0xdead"]),
    ("eth_call", [{"to": "0x12"}]),
    ("eth_call", [{"to": "0x" + "11" * 20, "data": "0xabc"}]),
    ("eth_call", [{"to": "0x" + "11" * 20, "data": "0x01", "input": "0x02"}]),
    ("eth_call", [{"to": "0x" + "11" * 20}, "latest", {"0x" + "11" * 20: {}}]),
    ("eth_estimateGas", [{"to": "0x" + "11" * 20, "value": "ten"}]),
    ("eth_estimateGas", [{"to": "0x" + "11" * 20, "gas": "0x"}]),
    ("eth_sendRawTransaction", []),
    ("eth_sendRawTransaction", ["0x"]),
    ("eth_sendRawTransaction", ["0x" + "00" * 10]),
    ("eth_sendRawTransaction", ["nothex"]),
    ("eth_sendRawTransaction", ["0x12 34"]),
    ("eth_getTransactionByHash", ["0x1234"]),
    ("eth_getTransactionByHash", []),
    ("eth_getTransactionReceipt", [None]),
    ("eth_getTransactionByBlockNumberAndIndex", ["latest"]),
    ("eth_getTransactionByBlockNumberAndIndex", ["latest", "first"]),
    ("eth_getTransactionByBlockHashAndIndex", ["0x12", "0x0"]),
    ("eth_getBlockByNumber", []),
    ("eth_getBlockByNumber", ["latest", "yes"]),
    ("eth_getBlockByNumber", [12, False]),
    ("eth_getBlockByNumber", ["0x-1", False]),
    ("eth_getBlockByHash", ["0x" + "ab" * 31, False]),
    ("eth_getBlockTransactionCountByNumber", ["newest"]),
    ("eth_getBlockTransactionCountByHash", [7]),
    ("eth_getUncleCountByBlockHash", ["0x"]),
    ("eth_getBlockReceipts", [True]),
    ("eth_feeHistory", ["0x1"]),
    ("eth_getLogs", []),
    ("eth_getLogs", ["latest"]),
    ("eth_getLogs", [{"address": "0x12"}]),
    ("eth_getLogs", [{"topics": ["0x12"]}]),
    ("eth_getLogs", [{"topics": [None, None, None, None, None]}]),
    ("eth_getLogs", [{"topics": "0x" + "00" * 32}]),
    ("eth_getLogs", [{"fromBlock": "0x5", "toBlock": "0x1"}]),
    ("eth_getLogs", [{"blockHash": "0x" + "ab" * 32, "fromBlock": "0x1"}]),
    ("eth_getLogs", [{"fromBlock": "yesterday"}]),
    ("eth_getLogs", [{"addresses": []}]),
    ("eth_newFilter", [{"topics": [["0x1"]]}]),
    ("eth_newFilter", [{"blockHash": "0x" + "ab" * 32}]),
    ("eth_newFilter", []),
    ("eth_newBlockFilter", ["x"]),
    ("eth_getFilterChanges", []),
    ("eth_uninstallFilter", []),
]


def test_bad_input_on_every_method_is_refused_with_typed_errors_and_changes_nothing(
    evm_crypto_dir: Path, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        root, height, pooled = h.node.ledger.state_root, h.node.ledger.height, len(h.node.mempool)
        for method, params in BAD_INPUT:
            answer = await rpc(h, method, *params)
            found = answer.get("error", {})
            assert found.get("code") == -32602, (method, params, answer)
            assert isinstance(found["message"], str) and found["message"]
        assert (h.node.ledger.state_root, h.node.ledger.height, len(h.node.mempool)) == (root, height, pooled)
        assert (await error(h, "eth_getFilterChanges", "0x" + "00" * 16))["code"] == -32000
        assert (await error(h, "eth_subscribe", "newHeads"))["code"] == -32601  # WebSocket only
        assert (await error(h, "eth_sign", "0x" + ALICE.hex(), "0x00"))["code"] == -32601
        assert (await error(h, "eth_getBalance", "0x" + ALICE.hex(), {"blockHash": "0x" + "ab" * 32}))[
            "code"
        ] == -32000
        head_hash = "0x" + h.node.ledger.head_hash.hex()
        assert await result(h, "eth_getBalance", "0x" + ALICE.hex(), {"blockHash": head_hash}) == "0x0"
        assert await result(h, "eth_getBalance", "0x" + ALICE.hex(), {"blockNumber": hex(height)}) == "0x0"
        not_list = await h.http.post(
            "/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {}}
        )
        assert not_list.json()["error"]["code"] == -32600

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_batches_mix_answers_errors_and_notifications(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        chain_id = await result(h, "eth_chainId")
        batch = [
            {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"},
            {"jsonrpc": "2.0", "id": "b", "method": "eth_getBalance", "params": ["0x12"]},
            {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
            {"jsonrpc": "2.0", "id": "c", "method": "eth_nope"},
            {"jsonrpc": "1.0", "id": "d", "method": "eth_chainId"},
            {"jsonrpc": "2.0", "id": "e", "method": "eth_getBlockByNumber", "params": ["latest", False]},
            17,
        ]
        answers = (await h.http.post("/jsonrpc", json=batch)).json()
        assert [a["id"] for a in answers] == ["a", "b", "c", None, "e", None]
        assert answers[0]["result"] == chain_id
        assert [a.get("error", {}).get("code") for a in answers] == [
            None,
            -32602,
            -32601,
            -32600,
            None,
            -32600,
        ]
        assert answers[4]["result"]["number"] == hex(h.node.ledger.height)
        empty = await h.http.post("/jsonrpc", json=[])
        assert empty.json()["error"]["code"] == -32600
        only_notifications = await h.http.post("/jsonrpc", json=[{"jsonrpc": "2.0", "method": "eth_chainId"}])
        assert only_notifications.status_code == 204
        too_many = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(1001)]
        assert (await h.http.post("/jsonrpc", json=too_many)).json()["error"]["code"] == -32600
        assert (await rpc(h, "eth_chainId"))["result"] == chain_id

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_repeated_calls_and_blocks_never_reuse_a_journal_checkpoint() -> None:
    """eth_estimateGas runs a call many times in one process: every run's journal
    checkpoints must stay distinct from those py-evm's transient storage draws."""
    chain = EvmChain()
    deploy = token_deploy_data("Coin", "C", 1_000)
    for gas in (None, 600_000, 500_000, 3_000_000):
        outcome = chain.executor.eth_call(
            chain.state, chain.config, chain.height, chain.now_ms, ALICE, None, deploy, 0, gas
        )
        assert outcome.status == STATUS_OK, outcome.error
    for _ in range(3):
        (created,) = chain.run(chain.eth(ALICE_KEY, None, deploy)).receipts
        assert created.status == STATUS_OK, created.error
