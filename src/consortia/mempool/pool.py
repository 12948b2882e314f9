"""The transaction pool: admission limits, dedup, FIFO order, Ethereum nonce order.

Pure data structure: no I/O, no clock. Transactions are admitted only after the node has
checked their signature and identity; the pool enforces limits and uniqueness.

Native transactions are proposed first come, first served. Ethereum transactions (those
with an `eth_nonce`) behave as in geth or Besu: per sender, the pool knows the committed
nonce (`account_nonce` on `add`, `sync_account` after each block) and the transactions
whose nonces continue it without a gap are *ready*; the others are *queued* and wait, not
proposed, until the gap closes. A block takes a sender's ready transactions in nonce order
(wherever the first of them sits in the arrival order), and sums their gas limits against
the block's EVM gas budget. A nonce already pending for the sender is refused
(`NonceTaken`): gas is free here, so there is no "replace by a higher price" rule; a sender
who wants another transaction at that nonce waits until the pending one commits or is
dropped. Queued transactions are bounded per sender, and so is how far beyond the next
ready nonce a queued transaction may sit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import msgspec


class MempoolError(Exception):
    code = "mempool_error"


class DuplicateTransaction(MempoolError):
    code = "duplicate_transaction"


class MempoolFull(MempoolError):
    code = "mempool_full"


class SenderLimit(MempoolError):
    code = "sender_limit"


class NonceTooLow(MempoolError):
    """An Ethereum transaction whose nonce the sender's committed transactions already used."""

    code = "nonce_too_low"


class NonceTaken(MempoolError):
    """Another pending Ethereum transaction of the sender has this nonce."""

    code = "nonce_taken"


class NonceGapTooLarge(MempoolError):
    """An Ethereum transaction's nonce lies too far beyond the sender's next ready nonce."""

    code = "nonce_gap_too_large"


class AccountQueueFull(MempoolError):
    """The sender already has the most queued (future-nonce) transactions allowed."""

    code = "account_queue_full"


@dataclass(frozen=True)
class PoolLimits:
    txs_max: int = 200_000
    bytes_max: int = 256 * 1024 * 1024
    per_sender_txs_max: int = 50_000
    # Ethereum senders: queued (future-nonce) transactions per sender, as geth's
    # account queue (64), and how far a queued nonce may be beyond the next ready one.
    eth_queued_per_sender_max: int = 64
    eth_nonce_gap_max: int = 256

    def validate(self) -> None:
        for name in (
            "txs_max",
            "bytes_max",
            "per_sender_txs_max",
            "eth_queued_per_sender_max",
            "eth_nonce_gap_max",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"mempool {name} must be positive")


class PooledTx(msgspec.Struct, frozen=True, gc=False):
    """One pooled transaction. A struct, as it is built for every admitted transaction
    (several times cheaper than a frozen dataclass); it holds no containers, so the
    garbage collector need not track it."""

    tx_id: bytes
    raw: bytes  # the encoded envelope, exactly as it will appear in a block
    sender: bytes  # hash of the signer's certificate, or an Ethereum sender's address
    eth_nonce: int | None = None  # set for Ethereum transactions only
    gas: int = 0  # an Ethereum transaction's gas limit


class _EthSender:
    """One Ethereum sender's pending nonces.

    Invariants: every pending nonce is >= `base` (the committed nonce as last told); the
    nonces base .. ready_end - 1 are all pending (the ready run) and ready_end is not.
    """

    __slots__ = ("base", "nonces", "ready_end")

    def __init__(self, base: int) -> None:
        self.base = base
        self.ready_end = base
        self.nonces: dict[int, bytes] = {}

    @property
    def queued(self) -> int:
        return len(self.nonces) - (self.ready_end - self.base)

    def advance(self) -> None:
        while self.ready_end in self.nonces:
            self.ready_end += 1

    def view_at(self, committed: int) -> tuple[int, int]:
        """(ready_end, queued) once the nonces below `committed` are dropped; no change."""
        if committed <= self.ready_end:
            return self.ready_end, self.queued  # only ready nonces go
        end = committed
        while end in self.nonces:
            end += 1
        alive = sum(1 for n in self.nonces if n >= committed)
        return end, alive - (end - committed)


class Mempool:
    def __init__(self, limits: PoolLimits | None = None) -> None:
        self.limits = limits or PoolLimits()
        self.limits.validate()
        self._txs: OrderedDict[bytes, PooledTx] = OrderedDict()
        self._bytes = 0
        self._per_sender: dict[bytes, int] = {}
        self._eth: dict[bytes, _EthSender] = {}
        self._queued = 0  # Ethereum transactions waiting for a nonce gap to close

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    def get(self, tx_id: bytes) -> PooledTx | None:
        return self._txs.get(tx_id)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def ready_count(self) -> int:
        """Transactions a block could take now (all but the queued Ethereum ones)."""
        return len(self._txs) - self._queued

    @property
    def queued_count(self) -> int:
        return self._queued

    def next_nonce(self, sender: bytes, account_nonce: int) -> int:
        """An Ethereum sender's next nonce counting its ready pending transactions (what
        `eth_getTransactionCount(address, "pending")` answers); `account_nonce` is the
        committed one."""
        account = self._eth.get(sender)
        if account is None:
            return account_nonce
        return account.view_at(max(account_nonce, account.base))[0]

    def add(self, tx: PooledTx, account_nonce: int = 0) -> list[bytes]:
        """Admit one transaction; `account_nonce` is an Ethereum sender's committed nonce.

        Returns the ids of the sender's transactions dropped because `account_nonce` shows
        their nonce was passed (see `sync_account`). Raises DuplicateTransaction,
        MempoolFull, SenderLimit, and for Ethereum transactions NonceTooLow, NonceTaken,
        NonceGapTooLarge, AccountQueueFull; on error the pool is unchanged.
        """
        txs, limits, tx_id, size = self._txs, self.limits, tx.tx_id, len(tx.raw)
        if tx_id in txs:
            raise DuplicateTransaction("transaction already pending")
        if len(txs) >= limits.txs_max or self._bytes + size > limits.bytes_max:
            raise MempoolFull("transaction pool is full; retry later")
        count = self._per_sender.get(tx.sender, 0)
        if count >= limits.per_sender_txs_max:
            raise SenderLimit(f"sender has {count} pending transactions (limit reached)")
        dropped: list[bytes] = []
        if tx.eth_nonce is not None:
            known = self._eth.get(tx.sender)
            committed = account_nonce if known is None else max(account_nonce, known.base)
            self._check_eth(tx, tx.eth_nonce, committed)
            dropped = self.sync_account(tx.sender, committed)
            count = self._per_sender.get(tx.sender, 0)
            account = self._eth.setdefault(tx.sender, _EthSender(committed))
            before = account.queued
            account.nonces[tx.eth_nonce] = tx.tx_id
            account.advance()
            self._queued += account.queued - before
        txs[tx_id] = tx
        self._bytes += size
        self._per_sender[tx.sender] = count + 1
        return dropped

    def _check_eth(self, tx: PooledTx, nonce: int, committed: int) -> None:
        if nonce < committed:
            raise NonceTooLow(f"nonce too low: the account is at nonce {committed}, transaction has {nonce}")
        account = self._eth.get(tx.sender)
        ready_end, queued = (committed, 0) if account is None else account.view_at(committed)
        if account is not None and nonce in account.nonces:
            raise NonceTaken(f"another pending transaction of this account has nonce {nonce}")
        if nonce == ready_end:
            return
        gap = nonce - ready_end
        if gap > self.limits.eth_nonce_gap_max:
            raise NonceGapTooLarge(
                f"nonce {nonce} is {gap} beyond the account's next nonce {ready_end} "
                f"(at most {self.limits.eth_nonce_gap_max})"
            )
        if queued >= self.limits.eth_queued_per_sender_max:
            raise AccountQueueFull(
                f"the account has {queued} transactions waiting for a nonce gap to close (limit reached)"
            )

    def sync_account(self, sender: bytes, committed_nonce: int) -> list[bytes]:
        """Tell the pool an Ethereum sender's committed nonce (after a block committed).

        Drops the sender's transactions whose nonce was passed (another transaction used
        it) and returns their ids; their gapped successors may become ready.
        """
        account = self._eth.get(sender)
        if account is None or committed_nonce <= account.base:
            return []
        if committed_nonce - account.base <= len(account.nonces):  # usually: a block's worth
            stale = [n for n in range(account.base, committed_nonce) if n in account.nonces]
        else:
            stale = sorted(n for n in account.nonces if n < committed_nonce)
        dropped = [account.nonces[n] for n in stale]
        self._drop(dropped)
        account = self._eth.get(sender)
        if account is not None:
            before = account.queued
            account.base = committed_nonce
            account.ready_end = max(account.ready_end, committed_nonce)
            account.advance()
            self._queued += account.queued - before
        return dropped

    def peek(
        self, txs_max: int, bytes_max: int, gas_max: int | None = None, tx_gas_max: int | None = None
    ) -> list[PooledTx]:
        """The transactions for one block, in order, without removing them.

        Oldest first, except that an Ethereum sender's ready transactions follow one
        another in nonce order from where the first of them sits. Stops at `txs_max` or
        `bytes_max`. Ethereum transactions also stop at `gas_max`, the sum of their gas
        limits: a sender whose next transaction does not fit gets nothing more in this
        block, others may still fit. A transaction above `tx_gas_max` is taken without
        counting its gas, and nothing after it from its sender: the executor refuses it
        without running it, so it leaves the pool.
        """
        out: list[PooledTx] = []
        total = 0
        gas_left = gas_max
        next_nonce: dict[bytes, int] = {}  # an Ethereum sender's next nonce in this block
        for tx in self._txs.values():
            nonce = tx.eth_nonce
            if nonce is None:
                if len(out) >= txs_max or total + len(tx.raw) > bytes_max:
                    break
                out.append(tx)
                total += len(tx.raw)
                continue
            sender = tx.sender
            account = self._eth[sender]
            if nonce != next_nonce.get(sender, account.base):
                continue  # taken already, waiting for a gap to close, or its sender is out of gas
            while True:
                pooled = self._txs[account.nonces[nonce]]
                if len(out) >= txs_max or total + len(pooled.raw) > bytes_max:
                    return out
                if tx_gas_max is not None and pooled.gas > tx_gas_max:
                    # Refused by the executor without running (the cap was lowered after
                    # admission): it leaves the pool; its successors would fail after it.
                    out.append(pooled)
                    total += len(pooled.raw)
                    nonce = -1
                    break
                if gas_left is not None and pooled.gas > gas_left:
                    nonce = -1  # this sender is done for this block
                    break
                out.append(pooled)
                total += len(pooled.raw)
                if gas_left is not None:
                    gas_left -= pooled.gas
                nonce += 1
                if nonce not in account.nonces:
                    break
            next_nonce[sender] = nonce
        return out

    def remove(self, tx_ids: list[bytes]) -> None:
        """Drop transactions that were committed (or that a block found invalid).

        An Ethereum sender's later nonces wait again until `sync_account` says the
        removed nonce was used (or another transaction takes it).
        """
        self._drop(tx_ids)

    def _drop(self, tx_ids: list[bytes]) -> None:
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
            if tx.eth_nonce is not None:
                self._forget_nonce(tx.sender, tx.eth_nonce)

    def _forget_nonce(self, sender: bytes, nonce: int) -> None:
        account = self._eth[sender]
        before = account.queued
        del account.nonces[nonce]
        if nonce < account.ready_end:
            account.ready_end = nonce  # the rest of the run now waits for this nonce
        self._queued += account.queued - before
        if not account.nonces:
            del self._eth[sender]
