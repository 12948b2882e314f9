"""Ethereum block, transaction, receipt and log objects of a channel block.

A channel block may mix native transactions (msgpack envelopes) with Ethereum ones. Its
Ethereum view lists only the Ethereum transactions, in block order, and numbers them
densely: `transactionIndex` is the position among the block's Ethereum transactions, so
`block.transactions[i].transactionIndex == i`, eth_getTransactionByBlock*AndIndex(i) is
that same transaction, and the transaction count is the list's length. `gasUsed`,
`cumulativeGasUsed`, `logsBloom` and `logIndex` likewise count Ethereum receipts only.
Native transactions stay visible through the native block API, which lists both kinds.

Header fields come from the channel header: `hash`, `parentHash`, `transactionsRoot`,
`stateRoot` and `receiptsRoot` are the channel's SHA-256 roots (over every transaction of
the block, and the sparse Merkle state tree), not Ethereum's keccak Patricia tries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import rlp

from consortia.api.jsonrpc.codec import data_hex, qty
from consortia.execution.evm.outcome import EVM_CONTRACT, LOG_EVENT
from consortia.types import STATUS_OK, Block, Receipt
from consortia.types.eth import (
    TX_TYPE_ACCESS_LIST,
    TX_TYPE_FEE_MARKET,
    TX_TYPE_LEGACY,
    EthTransaction,
    decode_eth_transaction,
    keccak256,
    tx_kind,
)

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_HASH = "0x" + "00" * 32
ZERO_NONCE = "0x" + "00" * 8
EMPTY_UNCLES_HASH = data_hex(keccak256(rlp.encode([])))

EthLog = tuple[bytes, list[bytes], bytes]  # (address, topics, data)


def logs_bloom(logs: list[tuple[bytes, list[bytes]]]) -> bytes:
    """The 2048-bit bloom of log addresses and topics (Yellow Paper, section 4.3.1)."""
    bloom = 0
    for address, topics in logs:
        for item in (address, *topics):
            digest = keccak256(item)
            for i in (0, 2, 4):
                bloom |= 1 << (int.from_bytes(digest[i : i + 2], "big") & 2047)
    return bloom.to_bytes(256, "big")


def receipt_logs(receipt: Receipt) -> list[EthLog]:
    return [
        (e.payload["address"], list(e.payload["topics"]), e.payload["data"])
        for e in receipt.events
        if e.contract == EVM_CONTRACT and e.name == LOG_EVENT
    ]


@dataclass(frozen=True, slots=True)
class EthEntry:
    """One Ethereum transaction of a channel block, with what its receipt needs."""

    raw: bytes
    receipt: Receipt
    index: int  # among the block's Ethereum transactions
    channel_index: int  # in the channel block
    cumulative_gas: int  # including this transaction
    first_log_index: int  # of this transaction's first log in the block
    logs: list[EthLog]

    @property
    def tx_hash(self) -> bytes:
        return self.receipt.tx_id  # an Ethereum transaction's id is its keccak hash


class EthBlock:
    """The Ethereum view of one committed channel block and its receipts.

    Transactions are decoded (signature recovery included) only when an object needs them.
    """

    def __init__(self, block: Block, receipts: list[Receipt], gas_limit: int) -> None:
        self.block = block
        self.gas_limit = gas_limit
        self.height = block.header.height
        self.hash_hex = data_hex(block.hash)
        self.entries: list[EthEntry] = []
        self._decoded: dict[int, EthTransaction] = {}
        if self.height == 0:
            return  # genesis holds the channel config, not transactions
        cumulative = log_index = 0
        for channel_index, (raw, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
            if tx_kind(raw) != "eth":
                continue
            logs = receipt_logs(receipt)
            cumulative += receipt.steps
            self.entries.append(
                EthEntry(raw, receipt, len(self.entries), channel_index, cumulative, log_index, logs)
            )
            log_index += len(logs)

    @property
    def gas_used(self) -> int:
        return self.entries[-1].cumulative_gas if self.entries else 0

    @property
    def timestamp(self) -> int:
        return self.block.header.timestamp_ms // 1000

    def by_hash(self, tx_hash: bytes) -> EthEntry | None:
        return next((e for e in self.entries if e.tx_hash == tx_hash), None)

    def by_channel_index(self, channel_index: int) -> EthEntry | None:
        return next((e for e in self.entries if e.channel_index == channel_index), None)

    def logs(self) -> Iterator[tuple[EthEntry, int, EthLog]]:
        """(entry, logIndex, log) for every log of the block, in order."""
        for entry in self.entries:
            for i, log in enumerate(entry.logs):
                yield entry, entry.first_log_index + i, log

    def bloom(self) -> bytes:
        return logs_bloom([(address, topics) for _, _, (address, topics, _) in self.logs()])

    # ---- JSON objects ---------------------------------------------------------------------

    def header_object(self, size: int) -> dict[str, Any]:
        """The block object without its transactions (what newHeads notifications carry)."""
        h = self.block.header
        return {
            "number": qty(self.height),
            "hash": self.hash_hex,
            "parentHash": data_hex(h.parent_hash) if len(h.parent_hash) == 32 else ZERO_HASH,
            "nonce": ZERO_NONCE,
            "sha3Uncles": EMPTY_UNCLES_HASH,
            "logsBloom": data_hex(self.bloom()),
            "transactionsRoot": data_hex(h.tx_root),
            "stateRoot": data_hex(h.state_root),
            "receiptsRoot": data_hex(h.receipts_root),
            "miner": ZERO_ADDRESS,
            "difficulty": "0x0",
            "totalDifficulty": "0x0",
            "extraData": "0x",
            "size": qty(size),
            "gasLimit": qty(self.gas_limit),
            "gasUsed": qty(self.gas_used),
            "timestamp": qty(self.timestamp),
            "baseFeePerGas": "0x0",
            "mixHash": ZERO_HASH,
        }

    def block_object(self, size: int, full: bool) -> dict[str, Any]:
        out = self.header_object(size)
        out["transactions"] = [self.tx_object(e) if full else data_hex(e.tx_hash) for e in self.entries]
        out["uncles"] = []
        return out

    def transaction(self, entry: EthEntry) -> EthTransaction:
        """The decoded transaction (sender recovery is the costly part, so it is kept)."""
        tx = self._decoded.get(entry.index)
        if tx is None:
            tx = self._decoded[entry.index] = decode_eth_transaction(entry.raw)
        return tx

    def tx_object(self, entry: EthEntry) -> dict[str, Any]:
        return tx_object(self.transaction(entry), self, entry.index)

    def log_object(self, entry: EthEntry, log_index: int, log: EthLog) -> dict[str, Any]:
        address, topics, data = log
        return {
            "address": data_hex(address),
            "topics": [data_hex(t) for t in topics],
            "data": data_hex(data),
            "blockNumber": qty(self.height),
            "blockHash": self.hash_hex,
            "blockTimestamp": qty(self.timestamp),
            "transactionHash": data_hex(entry.tx_hash),
            "transactionIndex": qty(entry.index),
            "logIndex": qty(log_index),
            "removed": False,
        }

    def receipt_object(self, entry: EthEntry) -> dict[str, Any]:
        tx = self.transaction(entry)
        receipt = entry.receipt
        result = receipt.result if isinstance(receipt.result, dict) else {}
        created = result.get("contract_address")
        return {
            "transactionHash": data_hex(entry.tx_hash),
            "transactionIndex": qty(entry.index),
            "blockHash": self.hash_hex,
            "blockNumber": qty(self.height),
            "from": data_hex(tx.sender),
            "to": None if tx.to is None else data_hex(tx.to),
            "cumulativeGasUsed": qty(entry.cumulative_gas),
            "gasUsed": qty(receipt.steps),
            "effectiveGasPrice": "0x0",
            "contractAddress": data_hex(created) if isinstance(created, bytes) else None,
            "logs": [
                self.log_object(entry, entry.first_log_index + i, log) for i, log in enumerate(entry.logs)
            ],
            "logsBloom": data_hex(logs_bloom([(a, t) for a, t, _ in entry.logs])),
            "status": "0x1" if receipt.status == STATUS_OK else "0x0",
            "type": qty(tx.tx_type),
        }


def tx_object(tx: EthTransaction, where: EthBlock | None, index: int | None) -> dict[str, Any]:
    """A transaction object; `where` is None while it waits in the pool."""
    if tx.tx_type == TX_TYPE_FEE_MARKET:
        # What a mined EIP-1559 transaction reports with a zero base fee (none is charged).
        gas_price = min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas)
    else:
        gas_price = tx.gas_price
    out: dict[str, Any] = {
        "hash": data_hex(tx.hash),
        "nonce": qty(tx.nonce),
        "blockHash": None if where is None else where.hash_hex,
        "blockNumber": None if where is None else qty(where.height),
        "transactionIndex": None if index is None else qty(index),
        "from": data_hex(tx.sender),
        "to": None if tx.to is None else data_hex(tx.to),
        "value": qty(tx.value),
        "gas": qty(tx.gas),
        "gasPrice": qty(gas_price),
        "input": data_hex(tx.data),
        "type": qty(tx.tx_type),
        "chainId": qty(tx.chain_id),
        "v": qty(tx.chain_id * 2 + 35 + tx.y_parity if tx.tx_type == TX_TYPE_LEGACY else tx.y_parity),
        "r": qty(tx.r),
        "s": qty(tx.s),
    }
    if tx.tx_type in (TX_TYPE_ACCESS_LIST, TX_TYPE_FEE_MARKET):
        out["accessList"] = [
            {"address": data_hex(address), "storageKeys": [data_hex(k) for k in keys]}
            for address, keys in tx.access_list
        ]
        out["yParity"] = qty(tx.y_parity)
    if tx.tx_type == TX_TYPE_FEE_MARKET:
        out["maxFeePerGas"] = qty(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = qty(tx.max_priority_fee_per_gas)
    return out
