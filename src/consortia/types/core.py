"""Transactions, blocks, headers, receipts and commit certificates.

All are frozen, array-like msgspec structs: the field order below *is* the wire and hash
format, so fields are only ever appended, never reordered.
"""

from __future__ import annotations

from typing import Any

import msgspec

from consortia.crypto.hashing import sha256
from consortia.types.codec import INT_MAX, INT_MIN, CodecError, check_value, decode_canonical, encode

# Domain-separation prefixes: a signature over one kind of object can never be
# replayed as a signature over another.
TX_SIGN_DOMAIN = b"consortia/tx/v1\x00"
COMMIT_SIGN_DOMAIN = b"consortia/commit/v1\x00"

NONCE_BYTES_MAX = 32
NAME_CHARS_MAX = 64
ARGS_MAX = 64


class Transaction(msgspec.Struct, array_like=True, frozen=True):
    """What a client signs. The signer is the full DER certificate (as Fabric's creator)."""

    chain_id: str
    channel: str
    nonce: bytes
    signer: bytes
    contract: str
    method: str
    args: list[Any]
    expiry_height: int = 0  # 0 = never expires; else the last height it may be included at

    def validate_shape(self) -> None:
        """Raise CodecError for fields no honest client produces."""
        if not 8 <= len(self.nonce) <= NONCE_BYTES_MAX:
            raise CodecError(f"nonce must be 8..{NONCE_BYTES_MAX} bytes")
        if not 1 <= len(self.contract) <= NAME_CHARS_MAX:
            raise CodecError(f"contract must be 1..{NAME_CHARS_MAX} characters")
        if not 1 <= len(self.method) <= NAME_CHARS_MAX:
            raise CodecError(f"method must be 1..{NAME_CHARS_MAX} characters")
        args = self.args
        if len(args) > ARGS_MAX:
            raise CodecError(f"at most {ARGS_MAX} arguments")
        if self.expiry_height < 0:
            raise CodecError("expiry_height must be >= 0")
        # check_value(args), with the usual flat arguments answered inline (this runs for
        # every transaction admitted); anything else goes through check_value at depth 1.
        for arg in args:
            kind = type(arg)
            if kind is str or kind is bytes or kind is bool or arg is None:
                continue
            if kind is int and INT_MIN <= arg <= INT_MAX:
                continue
            check_value(arg, 1)


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    """A signed transaction: `payload` is the canonical encoding of a Transaction."""

    payload: bytes
    signature: bytes

    @property
    def tx_id(self) -> bytes:
        return sha256(self.payload)


def tx_signing_bytes(tx_id: bytes) -> bytes:
    return TX_SIGN_DOMAIN + tx_id


def decode_envelope(data: bytes) -> tuple[Envelope, Transaction]:
    """Decode a wire envelope and its transaction, both in canonical form."""
    env = decode_canonical(data, Envelope)
    tx = decode_canonical(env.payload, Transaction)
    tx.validate_shape()
    return env, tx


class Header(msgspec.Struct, array_like=True, frozen=True):
    chain_id: str
    channel: str
    height: int
    parent_hash: bytes
    timestamp_ms: int
    proposer: str
    tx_root: bytes
    state_root: bytes
    receipts_root: bytes
    tx_count: int
    engine: bytes = b""  # engine-specific data (term, view, round), opaque to the ledger

    @property
    def hash(self) -> bytes:
        return sha256(encode(self))


class BlockSignature(msgspec.Struct, array_like=True, frozen=True):
    """A node's signature over a block hash; `signer` is the node's DER certificate."""

    signer: bytes
    signature: bytes


class CommitCertificate(msgspec.Struct, array_like=True, frozen=True):
    """Signatures over one block hash that together meet the channel's block policy."""

    height: int
    block_hash: bytes
    signatures: list[BlockSignature]


def commit_signing_bytes(block_hash: bytes) -> bytes:
    return COMMIT_SIGN_DOMAIN + block_hash


class Block(msgspec.Struct, array_like=True, frozen=True):
    header: Header
    txs: list[bytes]  # encoded envelopes, in order
    certificate: CommitCertificate | None = None

    @property
    def hash(self) -> bytes:
        return self.header.hash


# Events and receipts hold plain data only, so they can never be part of a reference cycle:
# the garbage collector need not track them (gc=False), and a block makes one or more of
# each per transaction.


class Event(msgspec.Struct, array_like=True, frozen=True, gc=False):
    contract: str
    name: str
    payload: Any


class Receipt(msgspec.Struct, array_like=True, frozen=True, gc=False):
    tx_id: bytes
    status: int  # STATUS_OK or a failure code
    error: str
    events: list[Event]
    steps: int
    result: Any = None


STATUS_OK = 0
STATUS_FAILED = 1  # the contract raised or ran out of steps; writes rolled back
STATUS_INVALID = 2  # the transaction is not valid in this block (identity, expiry, duplicate)


class Caller(msgspec.Struct, frozen=True):
    """Who signed a transaction, as proven by their certificate."""

    org: str
    role: str  # "admin" | "client" | "node"
    subject: str  # the certificate's common name
    cert_hash: bytes
    attributes: dict[str, str] = {}
