"""Generic message mutations: they change what they claim to and keep messages encodable."""

from __future__ import annotations

import random
from typing import Any, Union

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_toy_engines import MESSAGE_TYPES, Ack, Decide, Propose

from consortia.crypto import ZERO_HASH
from consortia.sim.byzantine import Mutator, replace_bytes, walk
from consortia.sim.options import ByzantinePlan
from consortia.types import Block, BlockSignature, CommitCertificate, Header, decode, encode

UNION: Any = Union[MESSAGE_TYPES]  # noqa: UP007


class Vote(msgspec.Struct, array_like=True, frozen=True, tag="v"):
    view: int
    seq: int
    digest: bytes
    signature: bytes
    granted: bool = True


def block(ts: int = 5) -> Block:
    h = Header("sim", "main", 3, ZERO_HASH, ts, "n0", ZERO_HASH, ZERO_HASH, ZERO_HASH, 0)
    return Block(h, [])


def mutator(*behaviours: str, seed: int = 1) -> Mutator:
    return Mutator(ByzantinePlan(0, behaviours, 1000, 4, 50), random.Random(seed))


def test_walk_with_identity_shares_everything() -> None:
    b = block()
    msg = Decide(b, CommitCertificate(3, b.hash, [BlockSignature(b"c", b"s" * 64)]))
    assert walk(msg, lambda v, _n: v) is msg


def test_equivocation_makes_a_different_well_formed_block_and_swaps_its_hash() -> None:
    b = block()
    msg = Decide(b, CommitCertificate(3, b.hash, []))
    forked = mutator("equivocate").equivocate(msg)
    assert forked.block.hash != b.hash
    assert forked.block.header.timestamp_ms == b.header.timestamp_ms + 1
    assert forked.certificate.block_hash == forked.block.hash  # every mention follows the block
    assert decode(encode(forked), UNION) == forked


def test_equivocation_without_a_block_changes_digests() -> None:
    vote = Vote(1, 2, b"d" * 32, b"s" * 64)
    forked = mutator("equivocate").equivocate(vote)
    assert forked.digest != vote.digest and forked.signature == vote.signature


def test_future_view_bumps_only_counters() -> None:
    vote = Vote(1, 2, b"d" * 32, b"s" * 64)
    m = mutator("future_view")
    ((_, out),) = m.outgoing("n1", vote, ["n1"])
    assert out.view > 1 and out.seq > 2
    assert (out.digest, out.signature, out.granted) == (vote.digest, vote.signature, True)


def test_forged_certificates_keep_signers_and_lose_validity() -> None:
    b = block()
    cert = CommitCertificate(3, b.hash, [BlockSignature(b"n1", b"a" * 64), BlockSignature(b"n2", b"b" * 64)])
    ((_, out),) = mutator("forge_cert").outgoing("n1", Decide(b, cert), ["n1"])
    assert [s.signer for s in out.certificate.signatures] == [b"n1", b"n2"]
    assert all(s.signature not in (b"a" * 64, b"b" * 64) for s in out.certificate.signatures)


def test_bad_signature_flips_one_byte() -> None:
    ack = Ack(3, b"h" * 32, b"s" * 64)
    ((_, out),) = mutator("bad_sig").outgoing("n1", ack, ["n1"])
    diff = [i for i in range(64) if out.signature[i] != ack.signature[i]]
    assert len(diff) == 1 and out.block_hash == ack.block_hash


def test_silence_and_flood() -> None:
    ack = Ack(3, b"h" * 32, b"s" * 64)
    assert mutator("silence").outgoing(None, ack, ["n1", "n2"]) == []
    flooded = mutator("flood").outgoing(None, ack, ["n1", "n2"])
    assert len(flooded) == 8 and {to for to, _ in flooded} == {"n1", "n2"}


def test_equivocating_broadcast_splits_the_peers() -> None:
    msg = Propose(block())
    out = mutator("equivocate").outgoing(None, msg, ["n1", "n2", "n3", "n4"])
    versions = {m.block.hash for _, m in out}
    assert len(out) == 4 and len(versions) == 2


def test_replace_bytes_only_touches_equal_values() -> None:
    ack = Ack(3, b"h" * 32, b"h" * 32)
    assert replace_bytes(ack, b"h" * 32, b"x" * 32) == Ack(3, b"x" * 32, b"x" * 32)
    assert replace_bytes(ack, b"q" * 32, b"x" * 32) is ack


@given(
    view=st.integers(0, 2**40),
    seq=st.integers(0, 2**40),
    digest=st.binary(min_size=32, max_size=32),
    sig=st.binary(min_size=64, max_size=64),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=60, deadline=None)
def test_any_mutation_stays_encodable(view: int, seq: int, digest: bytes, sig: bytes, seed: int) -> None:
    m = mutator("equivocate", "future_view", "forge_cert", "bad_sig", seed=seed)
    union: Any = Union[Vote, Ack]  # noqa: UP007
    for to, out in m.outgoing(None, Vote(view, seq, digest, sig), ["n1", "n2", "n3"]):
        assert to in ("n1", "n2", "n3")
        assert decode(encode(out), union) == out
