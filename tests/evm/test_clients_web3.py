"""web3.py, unchanged, against a running consortia network started by `consortia network up`.

Contracts are compiled by solc-js at test time; transactions are signed locally by web3's
accounts and sent with eth_sendRawTransaction, as wallets do. The refusals at the end send
hand-made transactions (fields set explicitly) so each one exercises admission alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder

from consortia.types.eth import keccak256

from .clients_kit import EthNetwork, compile_contracts, network_up, permitted_accounts, unpermitted_key

SUPPLY = 1_000_000
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
STORED_TOPIC = "0x" + keccak256(b"Stored(uint256,uint256)").hex()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EthNetwork]:
    compile_contracts()  # install and compile before the network's clock starts
    with network_up(tmp_path_factory.mktemp("web3-net") / "net") as network:
        permitted_accounts(network, ["alice", "bob", "carol"])
        yield network


@pytest.fixture(scope="module")
def alice(net: EthNetwork) -> LocalAccount:
    return Account.from_key(net.keys["alice"])


@pytest.fixture(scope="module")
def w3(net: EthNetwork, alice: LocalAccount) -> Web3:
    """web3 on the first node, signing alice's transactions locally (as a wallet does)."""
    web3 = Web3(Web3.HTTPProvider(net.nodes[0].jsonrpc, request_kwargs={"timeout": 30}))
    web3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(alice), layer=0)
    return web3


@pytest.fixture(scope="module")
def token(w3: Web3, alice: LocalAccount) -> Contract:
    return _deploy(w3, alice, "Token", "Web3 Coin", "W3C", SUPPLY)


@pytest.fixture(scope="module")
def probe(w3: Web3, alice: LocalAccount) -> Contract:
    return _deploy(w3, alice, "Probe")


def _deploy(w3: Web3, sender: LocalAccount, name: str, *args: Any) -> Contract:
    compiled = compile_contracts()[name]
    factory = w3.eth.contract(abi=compiled["abi"], bytecode="0x" + compiled["bytecode"])
    tx_hash = factory.constructor(*args).transact({"from": sender.address})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt["status"] == 1, receipt
    address = receipt["contractAddress"]
    assert address is not None
    return w3.eth.contract(address=address, abi=compiled["abi"])


def _wait(w3: Web3, tx_hash: Any) -> Any:
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)


def test_web3_deploys_contracts_compiled_by_solc(w3: Web3, token: Contract, probe: Contract) -> None:
    compiled = compile_contracts()
    assert w3.eth.get_code(token.address) == bytes.fromhex(compiled["Token"]["deployed"])
    assert w3.eth.get_code(probe.address) == bytes.fromhex(compiled["Probe"]["deployed"])
    assert token.functions.name().call() == "Web3 Coin"
    assert token.functions.symbol().call() == "W3C"
    assert token.functions.decimals().call() == 18
    assert token.functions.totalSupply().call() == SUPPLY


def test_web3_transfers_and_reads_balances_on_every_node(
    net: EthNetwork, w3: Web3, token: Contract, alice: LocalAccount
) -> None:
    bob = Account.from_key(net.keys["bob"]).address
    before = token.functions.balanceOf(alice.address).call()
    nonce = w3.eth.get_transaction_count(alice.address)
    receipt = _wait(w3, token.functions.transfer(bob, 250).transact({"from": alice.address}))
    assert receipt["status"] == 1 and receipt["from"] == alice.address and receipt["to"] == token.address
    assert receipt["gasUsed"] > 21_000 and receipt["effectiveGasPrice"] == 0
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event["args"] == {"from": alice.address, "to": bob, "value": 250}
    assert w3.eth.get_transaction_count(alice.address) == nonce + 1
    assert w3.eth.get_balance(alice.address) == 0  # gas is free: nobody holds or spends ether
    for node in net.nodes:  # every node executed the block: same balances everywhere
        other = Web3(Web3.HTTPProvider(node.jsonrpc))
        other_receipt = _wait(other, receipt["transactionHash"])
        assert other_receipt["blockHash"] == receipt["blockHash"]
        replica = other.eth.contract(address=token.address, abi=token.abi)
        assert replica.functions.balanceOf(alice.address).call() == before - 250
        assert replica.functions.balanceOf(bob).call() == 250


def test_web3_filters_logs_by_indexed_topic(w3: Web3, probe: Contract, alice: LocalAccount) -> None:
    start = w3.eth.block_number
    pending = probe.events.Stored.create_filter(from_block="latest", argument_filters={"key": 9})
    raw_filter = w3.eth.filter({"address": probe.address, "topics": [STORED_TOPIC]})
    hashes = [probe.functions.store(k, v).transact({"from": alice.address}) for k, v in [(7, 70), (8, 80)]]
    hashes += [probe.functions.store(k, v).transact({"from": alice.address}) for k, v in [(7, 71), (9, 90)]]
    receipts = [_wait(w3, h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)

    key7 = "0x" + (7).to_bytes(32, "big").hex()
    logs = w3.eth.get_logs(
        {
            "address": probe.address,
            "fromBlock": start + 1,
            "toBlock": "latest",
            "topics": [STORED_TOPIC, key7],
        }
    )
    assert [probe.events.Stored().process_log(log)["args"]["value"] for log in logs] == [70, 71]
    assert [log["transactionHash"] for log in logs] == [hashes[0], hashes[2]]
    eights = probe.events.Stored.get_logs(argument_filters={"key": 8}, from_block=start + 1)
    assert [(e["args"]["key"], e["args"]["value"]) for e in eights] == [(8, 80)]
    assert eights[0]["blockNumber"] == receipts[1]["blockNumber"]

    assert [(e["args"]["key"], e["args"]["value"]) for e in pending.get_new_entries()] == [(9, 90)]
    assert pending.get_new_entries() == []  # changes are reported once
    assert len(raw_filter.get_new_entries()) == 4
    assert w3.eth.uninstall_filter(raw_filter.filter_id)


def test_web3_revert_reason_is_a_contract_logic_error(w3: Web3, probe: Contract, alice: LocalAccount) -> None:
    with pytest.raises(ContractLogicError, match="not today"):
        probe.functions.fail("not today").call()
    with pytest.raises(ContractLogicError, match="undone"):  # eth_estimateGas reverts too
        probe.functions.storeThenFail(5).transact({"from": alice.address})
    # Sent anyway (gas set, so nothing estimates): mined with status 0, its write undone.
    receipt = _wait(w3, probe.functions.storeThenFail(5).transact({"from": alice.address, "gas": 200_000}))
    assert receipt["status"] == 0
    assert probe.functions.slots(5).call() == 0


def test_web3_subscribes_to_new_heads_and_logs_over_websocket(
    net: EthNetwork, w3: Web3, probe: Contract, alice: LocalAccount
) -> None:
    async def body() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        async with AsyncWeb3(WebSocketProvider(net.nodes[-1].jsonrpc_ws)) as aw3:
            start = await aw3.eth.block_number
            heads_id = await aw3.eth.subscribe("newHeads")
            logs_id = await aw3.eth.subscribe("logs", {"address": probe.address, "topics": [STORED_TOPIC]})
            # The transaction goes to another node over HTTP: the head arrives by consensus.
            tx_hash = probe.functions.store(11, 110).transact({"from": alice.address})
            heads: list[dict[str, Any]] = []
            logs: list[dict[str, Any]] = []

            async def collect() -> None:
                async for message in aw3.socket.process_subscriptions():
                    if message["subscription"] == heads_id:
                        heads.append(dict(message["result"]))
                    elif message["subscription"] == logs_id:
                        logs.append(dict(message["result"]))
                    if logs and heads and heads[-1]["number"] >= logs[-1]["blockNumber"]:
                        return

            await asyncio.wait_for(collect(), 30)
            assert await aw3.eth.unsubscribe(heads_id)
            assert await aw3.eth.unsubscribe(logs_id)
            assert logs[0]["transactionHash"] == tx_hash
            return heads, logs, start

    heads, logs, start = asyncio.run(body())
    numbers = [h["number"] for h in heads]
    assert numbers == sorted(numbers) and numbers[0] > start
    for head in heads:
        block = w3.eth.get_block(head["number"])
        assert head["hash"] == block["hash"] and head["parentHash"] == block["parentHash"]
        assert head["stateRoot"] == block["stateRoot"] and head["timestamp"] == block["timestamp"]
    assert probe.events.Stored().process_log(logs[0])["args"] == {"key": 11, "value": 110}


# ---- refusals: each with a clear error and no state change ----------------------------------


def _signed(w3: Web3, key: bytes, nonce: int, **fields: Any) -> bytes:
    tx = {
        "chainId": w3.eth.chain_id,
        "nonce": nonce,
        "gas": 300_000,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "value": 0,
        **fields,
    }
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def _transfer_data(token: Contract, to: str, value: int) -> str:
    return str(token.encode_abi("transfer", args=[to, value]))


def _refused(w3: Web3, raw: bytes, code: str, message: str) -> None:
    with pytest.raises(Web3RPCError) as caught:
        w3.eth.send_raw_transaction(raw)
    assert caught.value.rpc_response is not None
    error = caught.value.rpc_response["error"]
    assert error["code"] == -32000 and error["data"]["code"] == code, error
    assert message in error["message"], error
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(keccak256(raw))


class _Snapshot:
    """Token balances and the nonce of the accounts a refused transaction could touch."""

    def __init__(self, w3: Web3, token: Contract, *addresses: str) -> None:
        self.view = [
            (w3.eth.get_transaction_count(a), w3.eth.get_balance(a), token.functions.balanceOf(a).call())
            for a in addresses
        ]


@pytest.fixture(scope="module")
def plain_token(net: EthNetwork, w3: Web3, alice: LocalAccount) -> Contract:
    """A Token deployed by a transaction with every field set, so that the refusals below
    depend on nothing but eth_sendRawTransaction, receipts and reads."""
    compiled = compile_contracts()["Token"]
    factory = w3.eth.contract(abi=compiled["abi"], bytecode="0x" + compiled["bytecode"])
    data = factory.constructor("Plain Coin", "PLC", SUPPLY).data_in_transaction
    raw = _signed(
        w3, net.keys["alice"], w3.eth.get_transaction_count(alice.address), data=data, gas=1_000_000
    )
    receipt = _wait(w3, w3.eth.send_raw_transaction(raw))
    assert receipt["status"] == 1, receipt
    return w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])


def test_refuses_wrong_chain_id(net: EthNetwork, w3: Web3, plain_token: Contract) -> None:
    token = plain_token
    carol = Account.from_key(net.keys["carol"]).address
    before = _Snapshot(w3, token, carol)
    raw = _signed(
        w3,
        net.keys["carol"],
        0,
        chainId=w3.eth.chain_id + 1,
        to=token.address,
        data=_transfer_data(token, carol, 0),
    )
    _refused(w3, raw, "wrong_chain", f"chain id {w3.eth.chain_id + 1}")
    assert _Snapshot(w3, token, carol).view == before.view


def test_refuses_replayed_raw_transaction(
    net: EthNetwork, w3: Web3, plain_token: Contract, alice: LocalAccount
) -> None:
    token = plain_token
    carol = Account.from_key(net.keys["carol"]).address
    raw = _signed(
        w3,
        net.keys["alice"],
        w3.eth.get_transaction_count(alice.address),
        to=token.address,
        data=_transfer_data(token, carol, 5),
    )
    assert _wait(w3, w3.eth.send_raw_transaction(raw))["status"] == 1
    after_first = _Snapshot(w3, token, alice.address, carol)
    with pytest.raises(Web3RPCError) as caught:
        w3.eth.send_raw_transaction(raw)
    assert caught.value.rpc_response is not None
    error = caught.value.rpc_response["error"]
    assert error["data"]["code"] == "duplicate_transaction" and "already" in error["message"], error
    assert _Snapshot(w3, token, alice.address, carol).view == after_first.view
    assert token.functions.balanceOf(carol).call() == 5


def test_refuses_high_s_signature(net: EthNetwork, w3: Web3, plain_token: Contract) -> None:
    token = plain_token
    carol = Account.from_key(net.keys["carol"]).address
    before = _Snapshot(w3, token, carol)
    raw = _signed(w3, net.keys["carol"], 0, to=token.address, data=_transfer_data(token, carol, 0))
    malleated = _flip_s(raw)
    assert Account.recover_transaction(malleated) == carol  # same signer, the other s
    _refused(w3, malleated, "bad_signature", "low-s")
    assert _Snapshot(w3, token, carol).view == before.view


def _flip_s(raw: bytes) -> bytes:
    """The same EIP-1559 transaction with s replaced by n - s and yParity flipped: a valid
    signature by the same key in every respect except that s is in the upper half."""
    assert raw[0] == 2
    fields = rlp.decode(raw[1:])
    y_parity, s = int.from_bytes(fields[-3], "big"), int.from_bytes(fields[-1], "big")
    fields[-3] = rlp.sedes.big_endian_int.serialize(y_parity ^ 1)
    fields[-1] = rlp.sedes.big_endian_int.serialize(SECP256K1_N - s)
    return b"\x02" + rlp.encode(fields)


def test_refuses_nonce_too_low(net: EthNetwork, w3: Web3, plain_token: Contract, alice: LocalAccount) -> None:
    token = plain_token
    carol = Account.from_key(net.keys["carol"]).address
    nonce = w3.eth.get_transaction_count(alice.address)
    assert nonce > 0
    before = _Snapshot(w3, token, alice.address, carol)
    raw = _signed(w3, net.keys["alice"], nonce - 1, to=token.address, data=_transfer_data(token, carol, 7))
    _refused(w3, raw, "nonce_too_low", "nonce too low")
    assert _Snapshot(w3, token, alice.address, carol).view == before.view


def test_refuses_unpermissioned_sender(w3: Web3, plain_token: Contract) -> None:
    token = plain_token
    stranger = Account.from_key(unpermitted_key("web3"))
    before = _Snapshot(w3, token, stranger.address)
    deploy = compile_contracts()["Probe"]["bytecode"]
    raw = _signed(w3, stranger.key, 0, data="0x" + deploy)
    _refused(w3, raw, "not_permitted", "not permitted")
    assert _Snapshot(w3, token, stranger.address).view == before.view
    would_be = keccak256(rlp.encode([bytes.fromhex(stranger.address[2:]), 0]))[12:]
    assert w3.eth.get_code(Web3.to_checksum_address(would_be)) == b""
