"""Pure PBFT checks: message shape, certificates, view changes and the NEW-VIEW O set.

Nothing here keeps state, so any node (or a light client, for commit certificates) can use
it. Every check returns False/None for bad input rather than raising: peer data is
untrusted, and a refused message must leave the engine unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableSet, Sequence
from dataclasses import dataclass
from typing import cast

import msgspec

from consortia.consensus.interface import Peer
from consortia.consensus.pbft_messages import (
    MESSAGE_TYPES,
    Checkpoint,
    CheckpointProof,
    Commit,
    NewView,
    PbftMessage,
    Prepare,
    PreparedCert,
    PrePrepare,
    ViewChange,
    Vote,
    checkpoint_bytes,
    new_view_bytes,
    prepare_bytes,
    preprepare_bytes,
    view_change_bytes,
)
from consortia.crypto import HASH_BYTES, ZERO_HASH, sha256
from consortia.types import CodecError, CommitCertificate, commit_signing_bytes, decode, encode

NUMBER_MAX = 2**62  # views and sequence numbers stay far from any integer-encoding edge
SIGNATURE_BYTES_MAX = 128
NAME_CHARS_MAX = 64
VIEW_CHANGE_BLOCKS_MAX = 2


class Committee:
    """The validator set: who is primary of a view, quorum sizes, whose key signs what."""

    def __init__(self, peers: Sequence[Peer]) -> None:
        self.peers = tuple(peers)
        self.names = tuple(p.name for p in self.peers)
        self.by_name: dict[str, Peer] = {p.name: p for p in self.peers}
        self.n = len(self.peers)
        self.f = (self.n - 1) // 3
        # The smallest quorum any two of which share f+1 replicas (so at least one correct);
        # it is exactly 2f+1 when n = 3f+1.
        self.quorum = (self.n + self.f + 2) // 2

    def primary(self, view: int) -> str:
        return self.names[view % self.n]

    def verify(self, name: str, message: bytes, signature: bytes) -> bool:
        peer = self.by_name.get(name)
        return peer is not None and peer.verify(message, signature)


@dataclass(frozen=True)
class NewViewPlan:
    """What a NEW-VIEW for a set of view changes must contain (PBFT §4.4, signature variant).

    `stable` is the highest stable checkpoint among the view changes (min-s); `o_set` lists
    (seq, digest) for every sequence above it with a prepared certificate, taking the
    digest of the certificate with the highest view; `floor` is the last sequence the O set
    decides, so fresh proposals in the new view start above it.
    """

    stable: CheckpointProof
    o_set: tuple[tuple[int, bytes], ...]

    @property
    def floor(self) -> int:
        return self.o_set[-1][0] if self.o_set else self.stable.seq


# ---- shape -------------------------------------------------------------------------------
def well_formed(message: object, committee: Committee, certs_max: int) -> PbftMessage | None:
    """The message re-typed exactly as the wire decoder would, or None if it is malformed.

    A round trip through the canonical codec checks every field's type (in-process drivers
    can hand us anything); ranges and list lengths are checked after.
    """
    if type(message) not in MESSAGE_TYPES:
        return None
    try:
        typed = cast(PbftMessage, decode(encode(message), type(message)))
    except (CodecError, TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return None
    return typed if _ranges_ok(typed, committee, certs_max) else None


def _number(x: int) -> bool:
    return 0 <= x < NUMBER_MAX


def _digest(x: bytes) -> bool:
    return len(x) == HASH_BYTES


def _sig(x: bytes) -> bool:
    return len(x) <= SIGNATURE_BYTES_MAX


def _votes_ok(votes: list[Vote], committee: Committee) -> bool:
    return len(votes) <= committee.n and all(
        len(v.replica) <= NAME_CHARS_MAX and _sig(v.signature) for v in votes
    )


def _cert_ok(cert: PreparedCert, committee: Committee) -> bool:
    return (
        _number(cert.view)
        and _number(cert.seq)
        and _digest(cert.digest)
        and _sig(cert.primary_signature)
        and _votes_ok(cert.prepares, committee)
    )


def _proof_ok(proof: CheckpointProof, committee: Committee) -> bool:
    return _number(proof.seq) and _digest(proof.digest) and _votes_ok(proof.votes, committee)


def _view_change_ok(vc: ViewChange, committee: Committee, certs_max: int) -> bool:
    return (
        _number(vc.new_view)
        and len(vc.replica) <= NAME_CHARS_MAX
        and _sig(vc.signature)
        and _proof_ok(vc.stable, committee)
        and len(vc.prepared) <= certs_max
        and all(_cert_ok(c, committee) for c in vc.prepared)
        and len(vc.blocks) <= VIEW_CHANGE_BLOCKS_MAX
    )


def _ranges_ok(m: PbftMessage, committee: Committee, certs_max: int) -> bool:
    if isinstance(m, PrePrepare):
        return _number(m.view) and _number(m.seq) and _digest(m.digest) and _sig(m.signature)
    if isinstance(m, Prepare):
        return _number(m.view) and _number(m.seq) and _digest(m.digest) and _sig(m.signature)
    if isinstance(m, Commit):
        return (
            _number(m.view)
            and _number(m.seq)
            and _digest(m.digest)
            and _sig(m.signature)
            and _sig(m.commit_signature)
        )
    if isinstance(m, Checkpoint):
        return _number(m.seq) and _digest(m.digest) and _sig(m.signature)
    if isinstance(m, ViewChange):
        return _view_change_ok(m, committee, certs_max)
    return (
        _number(m.view)
        and _sig(m.signature)
        and len(m.view_changes) <= committee.n
        and all(_view_change_ok(vc, committee, certs_max) for vc in m.view_changes)
        and len(m.pre_prepares) <= certs_max
        and all(
            _number(p.view) and _number(p.seq) and _digest(p.digest) and _sig(p.signature)
            for p in m.pre_prepares
        )
    )


# ---- certificates ------------------------------------------------------------------------
def _distinct_valid(
    committee: Committee, votes: list[Vote], message: bytes, exclude: str | None = None
) -> int:
    """How many distinct members (other than `exclude`) validly signed; -1 if any vote is bad."""
    seen: set[str] = set()
    for vote in votes:
        if vote.replica in seen or vote.replica == exclude:
            return -1
        if not committee.verify(vote.replica, message, vote.signature):
            return -1
        seen.add(vote.replica)
    return len(seen)


def verify_checkpoint_proof(committee: Committee, proof: CheckpointProof, interval: int) -> bool:
    """A quorum of valid CHECKPOINT signatures (PBFT §4.3); sequence 0 is the genesis."""
    if proof.seq == 0:
        return proof.digest == ZERO_HASH and not proof.votes
    if proof.seq % interval != 0:
        return False
    return _distinct_valid(committee, proof.votes, checkpoint_bytes(proof.seq, proof.digest)) >= (
        committee.quorum
    )


def verify_prepared_cert(committee: Committee, cert: PreparedCert) -> bool:
    """The pre-prepare by the view's primary plus quorum-1 prepares from other replicas."""
    primary = committee.primary(cert.view)
    if cert.seq < 1:
        return False
    if not committee.verify(
        primary, preprepare_bytes(cert.view, cert.seq, cert.digest), cert.primary_signature
    ):
        return False
    signed = prepare_bytes(cert.view, cert.seq, cert.digest)
    return _distinct_valid(committee, cert.prepares, signed, exclude=primary) >= committee.quorum - 1


def verify_view_change(
    committee: Committee,
    vc: ViewChange,
    interval: int,
    known: Mapping[str, ViewChange] | None = None,
    verified_certs: MutableSet[bytes] | None = None,
) -> bool:
    """Signature, stable checkpoint proof and every prepared certificate of a VIEW-CHANGE.

    The P set holds at most one certificate per sequence, each above the stable checkpoint
    and from a view below `new_view`. A view change equal to one already verified (`known`,
    by replica) is accepted without re-checking its signatures, and so is a certificate
    whose hash is in `verified_certs` (valid ones are added to it): replicas re-send the same
    certificates in view change after view change.
    """
    if vc.new_view < 1 or vc.replica not in committee.by_name:
        return False
    if known is not None and known.get(vc.replica) == vc:
        return True
    if not committee.verify(vc.replica, view_change_bytes(vc), vc.signature):
        return False
    if not verify_checkpoint_proof(committee, vc.stable, interval):
        return False
    last = vc.stable.seq
    for cert in vc.prepared:
        if cert.seq <= last or cert.view >= vc.new_view:
            return False
        key = sha256(encode(cert))
        if verified_certs is None or key not in verified_certs:
            if not verify_prepared_cert(committee, cert):
                return False
            if verified_certs is not None:
                verified_certs.add(key)
        last = cert.seq
    digests = {(c.seq, c.digest) for c in vc.prepared}
    return all((b.header.height, b.hash) in digests for b in vc.blocks)


def plan_new_view(view_changes: Sequence[ViewChange]) -> NewViewPlan:
    """The stable checkpoint and O set that a NEW-VIEW built from these view changes carries.

    Sequences run from min-s + 1 upward; the O set stops at the first sequence without a
    certificate. With at most f faulty replicas there is no such gap below a prepared
    sequence (a replica prepares seq only after committing seq-1, which a quorum prepared),
    so cutting there drops nothing that can have committed.
    """
    stable = max((vc.stable for vc in view_changes), key=lambda p: p.seq)
    best: dict[int, PreparedCert] = {}
    for vc in view_changes:
        for cert in vc.prepared:
            if cert.seq <= stable.seq:
                continue
            held = best.get(cert.seq)
            # Highest view wins; equal views with different digests need more than f faults,
            # and the smaller digest is taken so every replica computes the same O set.
            if held is None or (cert.view, held.digest) > (held.view, cert.digest):
                best[cert.seq] = cert
    o_set: list[tuple[int, bytes]] = []
    seq = stable.seq + 1
    while seq in best:
        o_set.append((seq, best[seq].digest))
        seq += 1
    return NewViewPlan(stable, tuple(o_set))


def verify_new_view(
    committee: Committee,
    nv: NewView,
    interval: int,
    known: Mapping[str, ViewChange] | None = None,
    verified_certs: MutableSet[bytes] | None = None,
) -> NewViewPlan | None:
    """The plan a valid NEW-VIEW follows, or None: the view changes must be a quorum of valid,
    distinct VIEW-CHANGE messages for `nv.view`, and the O set exactly what they imply,
    each pre-prepare signed by the new primary. The NEW-VIEW itself must be signed by it.
    """
    primary = committee.primary(nv.view)
    if nv.view < 1:
        return None
    if not committee.verify(primary, new_view_bytes(nv.view, nv.view_changes, nv.pre_prepares), nv.signature):
        return None
    replicas = [vc.replica for vc in nv.view_changes]
    if len(set(replicas)) != len(replicas) or len(replicas) < committee.quorum:
        return None
    for vc in nv.view_changes:
        if vc.new_view != nv.view or not verify_view_change(committee, vc, interval, known, verified_certs):
            return None
    plan = plan_new_view(nv.view_changes)
    if [(p.seq, p.digest) for p in nv.pre_prepares] != list(plan.o_set):
        return None
    for pp in nv.pre_prepares:
        if pp.view != nv.view:
            return None
        if not committee.verify(primary, preprepare_bytes(pp.view, pp.seq, pp.digest), pp.signature):
            return None
        if pp.block is not None and (pp.block.hash != pp.digest or pp.block.header.height != pp.seq):
            return None
    return plan


def verify_commit_certificate(
    peers: Sequence[Peer], header_hash: bytes, height: int, cert: CommitCertificate, quorum: int
) -> bool:
    """Whether `cert` proves the block `header_hash` at `height` was committed.

    Every signature must come from a distinct member of `peers` (matched by certificate DER)
    and verify over `commit_signing_bytes(header_hash)`; there must be at least `quorum`.
    A malformed certificate (stray or duplicate signer, bad signature) is refused outright.
    """
    if quorum < 1 or cert.height != height or cert.block_hash != header_hash:
        return False
    by_cert = {p.cert_der: p for p in peers}
    message = commit_signing_bytes(header_hash)
    seen: set[bytes] = set()
    for sig in cert.signatures:
        peer = by_cert.get(sig.signer)
        if peer is None or sig.signer in seen or not peer.verify(message, sig.signature):
            return False
        seen.add(sig.signer)
    return len(seen) >= quorum
