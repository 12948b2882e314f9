"""Admission: everything a transaction must pass before it may enter the pool.

Format, chain and channel, certificate (chains to a member CA, valid now, not revoked),
replay (never committed, not already pending), then the signature. A batch (one API
request, or the gossip that arrived in one event-loop turn) is checked with one clock
reading and validates each distinct certificate once. Signatures go to the verifier's
threads a batch at a time (small requests of one event-loop turn together), and each
batch's results come back to the loop in one wake-up.

Ethereum transactions (told apart by their first byte, `types.eth.tx_kind`) are checked
while decoding: canonical RLP, the channel's EIP-155 chain id, a low-s signature from which
the sender is recovered. Then the sender must be on the EVM allowlist, its gas limit within
the channel's per-transaction cap, the transaction hash new, and its nonce not below the
account's committed nonce; the pool then refuses a nonce already pending for the account
(`nonce_taken`) and bounds how many transactions may wait for a nonce gap to close.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import msgspec

from consortia.crypto import BatchVerifier, VerifyJob
from consortia.types import CodecError, Envelope, Transaction, decode_envelope, tx_signing_bytes
from consortia.types.eth import EthTransaction, EthTxError, decode_eth_transaction

# Signature checks worth a hand-off to the verifier's workers on their own: smaller requests
# wait for the end of the event-loop turn to go together (each hand-off wakes threads).
FLUSH_JOBS = 128


class AdmissionError(Exception):
    """A transaction refused at the door; `code` is machine-readable, nothing was stored."""

    code = "rejected"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class Admitted(msgspec.Struct, frozen=True, gc=False):
    """A transaction that passed every check but its signature. A struct, as it is built
    for every transaction; nothing it holds refers back to it, so the garbage collector
    need not track it."""

    tx_id: bytes
    raw: bytes
    tx: Transaction | EthTransaction
    sender: bytes  # certificate hash, or the Ethereum address
    job: VerifyJob | None  # the signature check still to do; None: checked while decoding
    account_nonce: int = 0  # an Ethereum sender's committed nonce when admitted


def parse_envelope(raw: bytes) -> tuple[Envelope, Transaction]:
    try:
        return decode_envelope(raw)
    except CodecError as exc:
        raise AdmissionError(f"malformed transaction: {exc}", "malformed") from exc


def parse_eth_transaction(raw: bytes, chain_id: int) -> EthTransaction:
    """Decode an Ethereum transaction signed for `chain_id` and recover its sender.

    Raises AdmissionError coded malformed, unsupported_tx_type, unprotected, bad_signature
    or wrong_chain.
    """
    try:
        return decode_eth_transaction(raw, chain_id)
    except EthTxError as exc:
        raise AdmissionError(str(exc), exc.code) from exc


class SignatureBatcher:
    """Verifies signatures on the verifier's workers while the event loop goes on.

    Requests made in one event-loop turn join one verifier job, which starts at the end of
    the turn, or at once when it holds `flush_jobs` signatures (so the workers need not wait
    for the rest of the turn). However many chunks the verifier splits a job into, its
    results reach the loop in one wake-up, when the last chunk is done.
    """

    def __init__(self, verifier: BatchVerifier, flush_jobs: int = FLUSH_JOBS) -> None:
        self._verifier = verifier
        self._flush_jobs = max(1, flush_jobs)
        self._jobs: list[VerifyJob] = []
        self._waiters: list[tuple[asyncio.Future[list[bool]], int]] = []
        self._scheduled = False

    def verify_many(self, jobs: list[VerifyJob]) -> asyncio.Future[list[bool]]:
        """Verify `jobs` without blocking the loop; the future's result is in job order."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[bool]] = loop.create_future()
        if not jobs:
            fut.set_result([])
            return fut
        self._jobs.extend(jobs)
        self._waiters.append((fut, len(jobs)))
        if len(self._jobs) >= self._flush_jobs:
            self._flush(loop)
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_scheduled, loop)
        return fut

    def _flush_scheduled(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._jobs:  # else flushed already, when it grew large enough
            self._flush(loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs, waiters = self._jobs, self._waiters
        self._jobs, self._waiters = [], []
        _Group(loop, self._verifier, jobs, waiters)


class _Group:
    """One verifier job and the callers waiting for their slices of its results."""

    __slots__ = ("_left", "_lock", "_loop", "_parts", "_waiters")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        verifier: BatchVerifier,
        jobs: list[VerifyJob],
        waiters: list[tuple[asyncio.Future[list[bool]], int]],
    ) -> None:
        self._loop = loop
        self._waiters = waiters
        self._lock = threading.Lock()
        try:
            self._parts = verifier.submit(jobs)
        except Exception as exc:  # pragma: no cover - verifier bug: fail loudly
            self._parts = []
            self._fail(exc)
            return
        self._left = len(self._parts)
        for part in self._parts:
            part.add_done_callback(self._part_done)

    def _part_done(self, _: Future[list[bool]]) -> None:
        # Runs on a verifier thread: only the last chunk to finish wakes the loop.
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            try:
                self._loop.call_soon_threadsafe(self._settle)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass

    def _settle(self) -> None:
        results: list[bool] = []
        for part in self._parts:
            exc = part.exception() if not part.cancelled() else None
            if part.cancelled() or exc is not None:  # pragma: no cover - verifier bug: fail loudly
                self._fail(exc or asyncio.CancelledError())
                return
            results.extend(part.result())
        start = 0
        for fut, count in self._waiters:
            if not fut.done():  # a caller that went away is skipped
                fut.set_result(results[start : start + count])
            start += count

    def _fail(self, exc: BaseException) -> None:
        for fut, _ in self._waiters:
            if not fut.done():
                fut.set_exception(exc)


def signature_job(suite: str, public_key: bytes, tx_id: bytes, signature: bytes) -> VerifyJob:
    return VerifyJob(suite, public_key, tx_signing_bytes(tx_id), signature)
