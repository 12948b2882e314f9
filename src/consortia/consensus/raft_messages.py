"""Raft wire messages and the checks every received message passes before the engine reads it.

Messages are frozen, array-like, tagged msgspec structs, so the network encodes any of them
with `consortia.types.encode` and decodes with `decode(raw, Union[MESSAGE_TYPES])`.
A peer's message is untrusted: `check_message` re-derives its types through the canonical
codec and bounds every number and list, returning None for anything malformed.
"""

from __future__ import annotations

import msgspec

from consortia.crypto import HASH_BYTES
from consortia.types import Block, CodecError, CommitCertificate, decode, encode

# Limits on what a peer may send; generous next to what an honest leader produces.
NUMBER_MAX = 2**62  # terms, indexes and heights
ENTRIES_PER_MSG_MAX = 4096
CERTS_PER_MSG_MAX = 4096
SIGNATURES_PER_MSG_MAX = 4096
CERT_SIGNATURES_MAX = 1024
SIGNATURE_BYTES_MAX = 512
NAME_CHARS_MAX = 256


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """One Raft log entry: a block, or a leader's no-op (§8: a new leader commits one)."""

    term: int
    block: Block | None = None


class BlockAck(msgspec.Struct, array_like=True, frozen=True):
    """A follower's signature over the hash of the block it holds at `height`."""

    height: int
    signature: bytes


class RequestVote(msgspec.Struct, array_like=True, frozen=True, tag="rv"):
    """§5.2 RequestVote; with `pre_vote`, the thesis §9.6 pre-vote for `term` (not yet entered)."""

    term: int
    last_index: int
    last_term: int
    pre_vote: bool = False


class RequestVoteResponse(msgspec.Struct, array_like=True, frozen=True, tag="rvr"):
    term: int
    granted: bool
    pre_vote: bool = False


class AppendEntries(msgspec.Struct, array_like=True, frozen=True, tag="ae"):
    """§5.3 AppendEntries, plus the certificates of newly committed blocks.

    `sig_from` asks the follower to sign the blocks it holds from that height on (the
    leader's first block without a certificate yet). `certs` carries certificates of
    committed blocks the follower has not reported committed.
    """

    term: int
    prev_index: int
    prev_term: int
    entries: list[Entry]
    commit_index: int
    sig_from: int
    certs: list[CommitCertificate]


class AppendEntriesResponse(msgspec.Struct, array_like=True, frozen=True, tag="aer"):
    """Reply to AppendEntries and InstallSnapshot.

    On success `index` is the last index known to match the leader's log. On failure
    `index` is the rejected `prev_index` (or snapshot index) and `hint` the index the
    leader should retry from (it probes with prev_index = hint). `committed_height` is
    the follower's highest committed block: the leader sends certificates above it.
    """

    term: int
    success: bool
    index: int
    hint: int
    committed_height: int
    signatures: list[BlockAck]


class InstallSnapshot(msgspec.Struct, array_like=True, frozen=True, tag="is"):
    """§7, reduced: the leader compacted the entries the follower needs.

    The snapshot is the ledger itself: the follower's driver fetches the committed blocks
    up to `height` by block sync. (`index`, `snap_term`) is the last compacted Raft entry;
    `height`/`block_hash` is the last block at or before it.
    """

    term: int
    index: int
    snap_term: int
    height: int
    block_hash: bytes


Message = RequestVote | RequestVoteResponse | AppendEntries | AppendEntriesResponse | InstallSnapshot
MESSAGE_TYPES = (RequestVote, RequestVoteResponse, AppendEntries, AppendEntriesResponse, InstallSnapshot)


def encode_term(term: int) -> bytes:
    """The `Header.engine` bytes of a block built in `term`."""
    return encode(term)


def check_message(message: object) -> Message | None:
    """The message re-decoded into exact types and range-checked, or None if it is malformed.

    Round-tripping through the codec catches structs built in-process with wrong field
    types as well as anything a decoder would refuse.
    """
    if not isinstance(message, MESSAGE_TYPES):
        return None
    try:
        checked: Message = decode(encode(message), Message)  # type: ignore[arg-type]
    except (CodecError, msgspec.EncodeError, OverflowError, TypeError, ValueError):
        return None
    return checked if _in_range(checked) else None


def _num(*values: int) -> bool:
    return all(0 <= v <= NUMBER_MAX for v in values)


def _in_range(m: Message) -> bool:
    if isinstance(m, RequestVote):
        return _num(m.term, m.last_index, m.last_term)
    if isinstance(m, RequestVoteResponse):
        return _num(m.term)
    if isinstance(m, AppendEntries):
        return (
            _num(m.term, m.prev_index, m.prev_term, m.commit_index, m.sig_from)
            and len(m.entries) <= ENTRIES_PER_MSG_MAX
            and len(m.certs) <= CERTS_PER_MSG_MAX
            and all(_entry_ok(e) for e in m.entries)
            and all(_cert_ok(c) for c in m.certs)
        )
    if isinstance(m, AppendEntriesResponse):
        return (
            _num(m.term, m.index, m.hint, m.committed_height)
            and len(m.signatures) <= SIGNATURES_PER_MSG_MAX
            and all(_num(a.height) and len(a.signature) <= SIGNATURE_BYTES_MAX for a in m.signatures)
        )
    return _num(m.term, m.index, m.snap_term, m.height) and len(m.block_hash) == HASH_BYTES


def _entry_ok(e: Entry) -> bool:
    if not _num(e.term):
        return False
    if e.block is None:
        return True
    if e.block.certificate is not None:
        return False  # certificates travel separately, never inside a log entry
    h = e.block.header
    return (
        _num(h.height, h.tx_count) and len(h.parent_hash) == HASH_BYTES and len(h.proposer) <= NAME_CHARS_MAX
    )


def _cert_ok(c: CommitCertificate) -> bool:
    return (
        _num(c.height)
        and len(c.block_hash) == HASH_BYTES
        and len(c.signatures) <= CERT_SIGNATURES_MAX
        and all(len(s.signature) <= SIGNATURE_BYTES_MAX for s in c.signatures)
    )
