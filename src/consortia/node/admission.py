"""Admission: everything a transaction must pass before it may enter the pool.

Format, chain and channel, certificate (chains to a member CA, valid now, not revoked),
replay (never committed, not already pending), then the signature. Signatures of all
requests that arrive in one event-loop turn are verified together on every core.

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
    """Collects verification requests from one loop turn and verifies them in one batch."""

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
            loop.call_soon(lambda: asyncio.ensure_future(self._flush()))
        return fut

    async def _flush(self) -> None:
        jobs, futures = self._jobs, self._futures
        self._jobs, self._futures, self._scheduled = [], [], False
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(None, self._verifier.verify, jobs)
        except Exception as exc:  # pragma: no cover - verifier bug; fail the requests loudly
            for fut in futures:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for fut, ok in zip(futures, results, strict=True):
            if not fut.done():
                fut.set_result(ok)


def signature_job(admitted_suite: str, public_key: bytes, env: Envelope) -> VerifyJob:
    return VerifyJob(admitted_suite, public_key, tx_signing_bytes(env.tx_id), env.signature)
