"""The transaction pool: admission limits, dedup, and FIFO order per block.

Pure data structure: no I/O, no clock. Transactions are admitted only after the node has
checked their signature and identity; the pool enforces limits and uniqueness.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


class MempoolError(Exception):
    code = "mempool_error"


class DuplicateTransaction(MempoolError):
    code = "duplicate_transaction"


class MempoolFull(MempoolError):
    code = "mempool_full"


class SenderLimit(MempoolError):
    code = "sender_limit"


@dataclass(frozen=True)
class PoolLimits:
    txs_max: int = 200_000
    bytes_max: int = 256 * 1024 * 1024
    per_sender_txs_max: int = 50_000

    def validate(self) -> None:
        for name in ("txs_max", "bytes_max", "per_sender_txs_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"mempool {name} must be positive")


@dataclass(frozen=True)
class PooledTx:
    tx_id: bytes
    raw: bytes  # the encoded envelope, exactly as it will appear in a block
    sender: bytes  # hash of the signer's certificate


class Mempool:
    def __init__(self, limits: PoolLimits | None = None) -> None:
        self.limits = limits or PoolLimits()
        self.limits.validate()
        self._txs: OrderedDict[bytes, PooledTx] = OrderedDict()
        self._bytes = 0
        self._per_sender: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def add(self, tx: PooledTx) -> None:
        """Admit one transaction.

        Raises DuplicateTransaction, MempoolFull, SenderLimit; on error the pool is unchanged.
        """
        if tx.tx_id in self._txs:
            raise DuplicateTransaction("transaction already pending")
        if len(self._txs) >= self.limits.txs_max or self._bytes + len(tx.raw) > self.limits.bytes_max:
            raise MempoolFull("transaction pool is full; retry later")
        count = self._per_sender.get(tx.sender, 0)
        if count >= self.limits.per_sender_txs_max:
            raise SenderLimit(f"sender has {count} pending transactions (limit reached)")
        self._txs[tx.tx_id] = tx
        self._bytes += len(tx.raw)
        self._per_sender[tx.sender] = count + 1

    def peek(self, txs_max: int, bytes_max: int) -> list[PooledTx]:
        """The oldest transactions that fit one block, without removing them."""
        out: list[PooledTx] = []
        total = 0
        for tx in self._txs.values():
            if len(out) >= txs_max or total + len(tx.raw) > bytes_max:
                break
            out.append(tx)
            total += len(tx.raw)
        return out

    def remove(self, tx_ids: list[bytes]) -> None:
        """Drop transactions that were committed (or that a block found invalid)."""
        for tx_id in tx_ids:
            tx = self._txs.pop(tx_id, None)
            if tx is None:
                continue
            self._bytes -= len(tx.raw)
            left = self._per_sender[tx.sender] - 1
            if left:
                self._per_sender[tx.sender] = left
            else:
                del self._per_sender[tx.sender]
