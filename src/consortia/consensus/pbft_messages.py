"""PBFT wire messages, what each signature covers, and the engine's persisted records.

Every message is signed by its sender's node key over `SIGN_DOMAIN + encode([kind, fields...])`,
so a signature over one kind of message can never be replayed as another, nor as a commit
signature (those use `consortia.types.commit_signing_bytes`). Blocks ride along with
pre-prepares and view changes unsigned: they are identified by their hash, which is signed.
"""

from __future__ import annotations

import msgspec

from consortia.crypto import sha256
from consortia.types import Block, encode

SIGN_DOMAIN = b"consortia/pbft/v1\x00"


class Vote(msgspec.Struct, array_like=True, frozen=True):
    """One replica's signature inside a certificate (a prepare or a checkpoint)."""

    replica: str
    signature: bytes


class PrePrepare(msgspec.Struct, array_like=True, frozen=True, tag="pp"):
    """The primary of `view` assigns `seq` (= block height) to the block with hash `digest`."""

    view: int
    seq: int
    digest: bytes
    signature: bytes
    block: Block | None = None  # absent in a NEW-VIEW's O set


class Prepare(msgspec.Struct, array_like=True, frozen=True, tag="pa"):
    view: int
    seq: int
    digest: bytes
    signature: bytes


class Commit(msgspec.Struct, array_like=True, frozen=True, tag="cm"):
    """`commit_signature` is the sender's block signature: commits are the commit certificate."""

    view: int
    seq: int
    digest: bytes
    commit_signature: bytes
    signature: bytes


class Checkpoint(msgspec.Struct, array_like=True, frozen=True, tag="ck"):
    seq: int
    digest: bytes
    signature: bytes


class CheckpointProof(msgspec.Struct, array_like=True, frozen=True):
    """A stable checkpoint: a quorum of signed CHECKPOINT(seq, digest). Seq 0 needs no votes."""

    seq: int
    digest: bytes
    votes: list[Vote]


class PreparedCert(msgspec.Struct, array_like=True, frozen=True):
    """Proof that a quorum prepared `digest` at (`view`, `seq`): the primary's pre-prepare
    signature plus prepares from distinct backups."""

    view: int
    seq: int
    digest: bytes
    primary_signature: bytes
    prepares: list[Vote]


class ViewChange(msgspec.Struct, array_like=True, frozen=True, tag="vc"):
    """`replica` asks to move to `new_view`, carrying its stable checkpoint and the P set.

    `blocks` holds the block of a prepared-but-uncommitted sequence when the sender has it,
    so the new primary can re-issue it; blocks are checked against the signed digests.
    """

    new_view: int
    replica: str
    stable: CheckpointProof
    prepared: list[PreparedCert]
    signature: bytes
    blocks: list[Block] = []


class NewView(msgspec.Struct, array_like=True, frozen=True, tag="nv"):
    """The new primary's proof of `view`: the view-change quorum and the re-issued O set."""

    view: int
    view_changes: list[ViewChange]
    pre_prepares: list[PrePrepare]
    signature: bytes


MESSAGE_TYPES = (PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)
PbftMessage = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView


# ---- what each signature covers -------------------------------------------------------
def preprepare_bytes(view: int, seq: int, digest: bytes) -> bytes:
    return SIGN_DOMAIN + encode(["pp", view, seq, digest])


def prepare_bytes(view: int, seq: int, digest: bytes) -> bytes:
    return SIGN_DOMAIN + encode(["pa", view, seq, digest])


def commit_bytes(view: int, seq: int, digest: bytes, commit_signature: bytes) -> bytes:
    return SIGN_DOMAIN + encode(["cm", view, seq, digest, commit_signature])


def checkpoint_bytes(seq: int, digest: bytes) -> bytes:
    return SIGN_DOMAIN + encode(["ck", seq, digest])


def view_change_bytes(vc: ViewChange) -> bytes:
    return SIGN_DOMAIN + encode(["vc", vc.new_view, vc.replica, vc.stable, vc.prepared])


def new_view_bytes(view: int, view_changes: list[ViewChange], pre_prepares: list[PrePrepare]) -> bytes:
    vcs = [sha256(view_change_bytes(vc)) for vc in view_changes]
    o_set = [[pp.view, pp.seq, pp.digest] for pp in pre_prepares]
    return SIGN_DOMAIN + encode(["nv", view, vcs, o_set])


# ---- persisted records ----------------------------------------------------------------
class ViewRecord(msgspec.Struct, array_like=True, frozen=True):
    """The view this replica is in (`changing`: it sent VIEW-CHANGE and awaits NEW-VIEW), and
    the last sequence that view's NEW-VIEW decided (fresh proposals start above it)."""

    view: int
    changing: bool
    floor: int = 0


class SlotRecord(msgspec.Struct, array_like=True, frozen=True):
    """What this replica pre-prepared or prepared at `seq` (in `view`), and its best P entry."""

    seq: int
    view: int
    digest: bytes
    cert: PreparedCert | None = None


VIEW_KEY = "pbft/view"
STABLE_KEY = "pbft/stable"
SLOT_KEY_PREFIX = "pbft/slot/"
BLOCK_KEY_PREFIX = "pbft/block/"


def slot_key(seq: int) -> str:
    return f"{SLOT_KEY_PREFIX}{seq:020d}"


def block_key(seq: int, digest: bytes) -> str:
    """A block this replica vouched for (pre-prepared or prepared) and has not committed yet."""
    return f"{BLOCK_KEY_PREFIX}{seq:020d}/{digest.hex()}"
