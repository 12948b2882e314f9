"""The Ethereum view of a channel block mixing native and Ethereum transactions."""

from __future__ import annotations

from consortia.api.jsonrpc.calls import estimate_gas
from consortia.api.jsonrpc.codec import RpcError
from consortia.api.jsonrpc.logs import parse_criteria
from consortia.api.jsonrpc.objects import EMPTY_UNCLES_HASH, EthBlock, logs_bloom
from consortia.execution.evm.outcome import BLOCK_GAS_LIMIT, EVM_CONTRACT, LOG_EVENT, EvmOutcome
from consortia.types import STATUS_FAILED, STATUS_OK, Block, Envelope, Event, Header, Receipt, encode
from consortia.types.eth import (
    TX_TYPE_ACCESS_LIST,
    TX_TYPE_FEE_MARKET,
    TX_TYPE_LEGACY,
    decode_eth_transaction,
    sign_eth_transaction,
)

from .evm_kit import ALICE, ALICE_KEY, BOB, ETH_CHAIN_ID, TRANSFER_TOPIC, address_word

TOKEN = bytes.fromhex("11" * 20)


def _eth(nonce: int, tx_type: int, **kw: object) -> bytes:
    return sign_eth_transaction(
        ALICE_KEY, chain_id=ETH_CHAIN_ID, nonce=nonce, gas=100_000, to=TOKEN, tx_type=tx_type, **kw
    )


def _log(*topics: bytes, data: bytes = b"\x01") -> Event:
    return Event(EVM_CONTRACT, LOG_EVENT, {"address": TOKEN, "topics": list(topics), "data": data})


def _mixed_block() -> tuple[Block, list[Receipt], list[bytes]]:
    """native, eth (1 log), native, eth (reverted), eth (2 logs)."""
    eths = [
        _eth(0, TX_TYPE_LEGACY, gas_price=7),
        _eth(1, TX_TYPE_ACCESS_LIST, access_list=((BOB, (b"\x00" * 32,)),)),
        _eth(2, TX_TYPE_FEE_MARKET, gas_price=9, max_priority_fee_per_gas=3),
    ]
    hashes = [decode_eth_transaction(raw).hash for raw in eths]
    native = [encode(Envelope(b"payload-%d" % i, b"sig")) for i in range(2)]
    txs = [native[0], eths[0], native[1], eths[1], eths[2]]
    transfer = (TRANSFER_TOPIC, address_word(ALICE), address_word(BOB))
    receipts = [
        Receipt(b"n" * 32, STATUS_OK, "", [Event("token", "Issued", {"amount": 1})], 40),
        Receipt(hashes[0], STATUS_OK, "", [_log(*transfer)], 30_000, {"gas_used": 30_000}),
        Receipt(b"m" * 32, STATUS_OK, "", [], 10),
        Receipt(hashes[1], STATUS_FAILED, "reverted: no", [], 25_000, {"gas_used": 25_000}),
        Receipt(hashes[2], STATUS_OK, "", [_log(*transfer), _log(TRANSFER_TOPIC)], 50_000, {}),
    ]
    header = Header(
        "c", "main", 5, b"\x01" * 32, 1_700_000_123_456, "n1", b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 5
    )
    return Block(header, txs), receipts, hashes


def test_only_ethereum_transactions_numbered_densely_with_consistent_gas_and_logs() -> None:
    block, receipts, hashes = _mixed_block()
    view = EthBlock(block, receipts, BLOCK_GAS_LIMIT)
    assert [e.channel_index for e in view.entries] == [1, 3, 4]
    assert [e.tx_hash for e in view.entries] == hashes

    obj = view.block_object(size=1234, full=True)
    assert [t["transactionIndex"] for t in obj["transactions"]] == ["0x0", "0x1", "0x2"]
    assert [t["hash"] for t in obj["transactions"]] == ["0x" + h.hex() for h in hashes]
    assert obj["gasUsed"] == hex(30_000 + 25_000 + 50_000)
    assert obj["gasLimit"] == hex(BLOCK_GAS_LIMIT) and obj["size"] == hex(1234)
    assert obj["number"] == "0x5" and obj["timestamp"] == hex(1_700_000_123)
    assert obj["hash"] == "0x" + block.hash.hex() and obj["parentHash"] == "0x" + "01" * 32
    assert (obj["transactionsRoot"], obj["stateRoot"], obj["receiptsRoot"]) == (
        "0x" + "02" * 32,
        "0x" + "03" * 32,
        "0x" + "04" * 32,
    )
    assert (
        obj["sha3Uncles"]
        == EMPTY_UNCLES_HASH
        == "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
    )
    assert obj["uncles"] == [] and obj["baseFeePerGas"] == "0x0" and len(obj["nonce"]) == 18
    assert len(obj["mixHash"]) == 66 and len(obj["miner"]) == 42
    transfer = (TRANSFER_TOPIC, address_word(ALICE), address_word(BOB))
    every_log = [
        (TOKEN, list(e.payload["topics"])) for r in receipts for e in r.events if e.contract == "evm"
    ]
    assert obj["logsBloom"] == "0x" + logs_bloom(every_log).hex()
    assert view.block_object(1234, full=False)["transactions"] == ["0x" + h.hex() for h in hashes]

    first, reverted, last = (view.receipt_object(e) for e in view.entries)
    assert [r["cumulativeGasUsed"] for r in (first, reverted, last)] == [
        hex(30_000),
        hex(55_000),
        hex(105_000),
    ]
    assert reverted["status"] == "0x0" and reverted["logs"] == [] and reverted["gasUsed"] == hex(25_000)
    assert [log["logIndex"] for log in first["logs"] + last["logs"]] == ["0x0", "0x1", "0x2"]
    assert {log["transactionIndex"] for log in last["logs"]} == {"0x2"}
    assert first["logsBloom"] == "0x" + logs_bloom([(TOKEN, list(transfer))]).hex()
    assert reverted["logsBloom"] == "0x" + "00" * 256

    legacy, access, fee = obj["transactions"]
    assert legacy["type"] == "0x0" and legacy["gasPrice"] == "0x7" and "accessList" not in legacy
    assert int(legacy["v"], 16) in (ETH_CHAIN_ID * 2 + 35, ETH_CHAIN_ID * 2 + 36)
    assert access["type"] == "0x1" and access["accessList"] == [
        {"address": "0x" + BOB.hex(), "storageKeys": ["0x" + "00" * 32]}
    ]
    assert fee["maxFeePerGas"] == "0x9" and fee["maxPriorityFeePerGas"] == "0x3" and fee["gasPrice"] == "0x3"
    assert (
        fee["from"] == "0x" + ALICE.hex()
        and fee["to"] == "0x" + TOKEN.hex()
        and fee["chainId"] == hex(ETH_CHAIN_ID)
    )


def test_log_criteria_address_lists_wildcards_and_or_positions() -> None:
    transfer = [TRANSFER_TOPIC, address_word(ALICE), address_word(BOB)]
    hexed = ["0x" + t.hex() for t in transfer]
    other = "0x" + "ee" * 32
    assert parse_criteria({}).matches(TOKEN, [])
    assert parse_criteria({"address": "0x" + TOKEN.hex()}).matches(TOKEN, transfer)
    assert not parse_criteria({"address": ["0x" + BOB.hex()]}).matches(TOKEN, transfer)
    assert parse_criteria({"address": ["0x" + BOB.hex(), "0x" + TOKEN.hex()]}).matches(TOKEN, transfer)
    assert parse_criteria({"topics": [None, None, hexed[2]]}).matches(TOKEN, transfer)
    assert not parse_criteria({"topics": [None, None, hexed[1]]}).matches(TOKEN, transfer)
    assert parse_criteria({"topics": [[other, hexed[0]]]}).matches(TOKEN, transfer)
    assert not parse_criteria({"topics": [[other]]}).matches(TOKEN, transfer)
    # A position, even a wildcard one, needs the log to have that many topics.
    assert not parse_criteria({"topics": [None, None, None, None]}).matches(TOKEN, transfer)
    assert parse_criteria({"topics": [hexed[0], [], None]}).matches(TOKEN, transfer)


def test_gas_estimate_finds_a_limit_that_works_when_the_gas_used_is_not_enough() -> None:
    """Refunds and the 63/64 rule: a call may need more gas than it ends up using."""
    runs: list[int] = []

    def run(gas: int, needs: int = 95_000, uses: int = 40_000) -> EvmOutcome:
        runs.append(gas)
        if gas < needs:
            return EvmOutcome(STATUS_FAILED, "out of gas", gas, b"", ())
        return EvmOutcome(STATUS_OK, "", uses, b"", ())

    found = estimate_gas(run, 30_000_000)
    assert 95_000 <= found <= 95_000 * 1.015 and len(runs) < 30
    assert estimate_gas(lambda gas: run(gas, 21_000, 21_000), 30_000_000) <= 21_000 * 1.015
    try:
        estimate_gas(run, 90_000)
        raise AssertionError("an estimate above the cap")
    except RpcError as exc:
        assert exc.code == -32000 and "allowance (90000)" in exc.message
