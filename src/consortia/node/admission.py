"""Admission: everything a transaction must pass before it may enter the pool.

Format, chain and channel, certificate (chains to a member CA, valid now, not revoked),
replay (never committed, not already pending), then the signature. Signatures of all
requests that arrive in one event-loop turn, or in one API batch, are verified together as
one job for the verifier's threads.

Ethereum transactions (told apart by their first byte, `types.eth.tx_kind`) are checked
while decoding: canonical RLP, the channel's EIP-155 chain id, a low-s signature from which
the sender is recovered. Then the sender must be on the EVM allowlist, its gas limit within
the channel's per-transaction cap, the transaction hash new, and its nonce not below the
account's committed nonce; the pool then refuses a nonce already pending for the account
(`nonce_taken`) and bounds how many transactions may wait for a nonce gap to close.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from consortia.crypto import BatchVerifier, VerifyJob
from consortia.types import CodecError, Envelope, Transaction, decode_envelope, tx_signing_bytes
from consortia.types.eth import EthTransaction, EthTxError, decode_eth_transaction

ETH_SUITE = "secp256k1-eth"  # the sender is the address recovered from the signature


class AdmissionError(Exception):
    """A transaction refused at the door; `code` is machine-readable, nothing was stored."""

    code = "rejected"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


@dataclass(frozen=True)
class Admitted:
    tx_id: bytes
    raw: bytes
    envelope: Envelope | None  # None: an Ethereum transaction, its signature checked in decoding
    tx: Transaction | EthTransaction
    sender: bytes  # certificate hash, or the Ethereum address
    suite: str
    public_key: bytes
    account_nonce: int = 0  # an Ethereum sender's committed nonce when admitted

    def signature_job(self) -> VerifyJob | None:
        """The signature check still to do (None: none, e.g. an Ethereum transaction)."""
        env = self.envelope
        if env is None:
            return None
        return signature_job(self.suite, self.public_key, self.tx_id, env.signature)


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
    """Verifies signatures on the verifier's threads while the event loop goes on.

    Single requests that arrive in one event-loop turn are verified together as one job;
    `verify_many` hands a whole batch (e.g. one API batch request) over as one job.
    """

    def __init__(self, verifier: BatchVerifier) -> None:
        self._verifier = verifier
        self._jobs: list[VerifyJob] = []
        self._futures: list[asyncio.Future[bool]] = []
        self._scheduled = False

    def verify(self, job: VerifyJob) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._jobs.append(job)
        self._futures.append(fut)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    async def verify_many(self, jobs: list[VerifyJob]) -> list[bool]:
        """Verify `jobs` (results in order) without blocking the loop."""
        parts = self._verifier.submit(jobs)
        if len(parts) == 1:
            return await asyncio.wrap_future(parts[0])
        results: list[bool] = []
        for part in await asyncio.gather(*(asyncio.wrap_future(p) for p in parts)):
            results.extend(part)
        return results

    def _flush(self) -> None:
        jobs, futures = self._jobs, self._futures
        self._jobs, self._futures, self._scheduled = [], [], False
        done = asyncio.ensure_future(self.verify_many(jobs))
        done.add_done_callback(lambda d: _settle(futures, d))


def _settle(futures: list[asyncio.Future[bool]], done: asyncio.Future[list[bool]]) -> None:
    exc = None if done.cancelled() else done.exception()
    if done.cancelled() or exc is not None:  # pragma: no cover - verifier bug: fail loudly
        for fut in futures:
            if not fut.done():
                fut.set_exception(exc or asyncio.CancelledError())
        return
    for fut, ok in zip(futures, done.result(), strict=True):
        if not fut.done():
            fut.set_result(ok)


def signature_job(suite: str, public_key: bytes, tx_id: bytes, signature: bytes) -> VerifyJob:
    return VerifyJob(suite, public_key, tx_signing_bytes(tx_id), signature)
