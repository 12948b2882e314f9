"""Randomized runs: lossy, reordering, duplicating networks, partitions, crashes, garbage.

Safety is checked all along by the harness (no two nodes commit different blocks at one
height, every ledger chains). After the chaos, the network heals and every node must
catch up to one common height (liveness), and every restart must rebuild exactly the
durable state the engine had (term, vote, log).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raft_harness import GENESIS, Cluster, key_of

from consortia.consensus import BlockSigner, CommitBlock, PeerMessage
from consortia.consensus.raft import LEADER, RaftEngine
from consortia.consensus.raft_messages import (
    AppendEntries,
    AppendEntriesResponse,
    BlockAck,
    Entry,
    InstallSnapshot,
    RequestVote,
    RequestVoteResponse,
    encode_term,
)
from consortia.crypto import ZERO_HASH
from consortia.types import Block, BlockSignature, CommitCertificate, Header

STEP_MS = 10


def durable(engine: RaftEngine) -> tuple[int, str, int, int, list[Entry]]:
    log = engine.log
    return (
        engine.term,
        engine.vote,
        log.snap.index,
        log.snap.term,
        log.slice(log.snap.index + 1, log.last_index),
    )


def chaos_step(c: Cluster, rng: random.Random, drop: float, dup: float) -> None:
    for name in c.alive():
        c.tick(name, STEP_MS)
    batch, c.queue = c.queue, []
    rng.shuffle(batch)
    for sender, dest, message in batch:
        if rng.random() < drop:
            continue
        copies = 2 if rng.random() < dup else 1
        for _ in range(copies):
            node = c.nodes[dest]
            if node.engine is None or frozenset((sender, dest)) in c.cut:
                continue
            c.step(dest, PeerMessage(sender, message))


def sync_laggards(c: Cluster) -> None:
    """The driver's block sync: a node the leader told to sync fetches the blocks."""
    for name in c.alive():
        engine = c.engine(name)
        if engine.sync_height() > c.nodes[name].height:
            c.sync(name)


def run_chaos(seed: int, names: tuple[str, ...], steps: int, params: dict[str, int | str]) -> Cluster:
    rng = random.Random(seed)
    c = Cluster(names, params, echo=False)
    f = (len(names) - 1) // 2
    drop = rng.choice([0.05, 0.2, 0.4])
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.005:
            groups = list(names)
            rng.shuffle(groups)
            cut = rng.randrange(1, len(groups))
            c.partition([groups[:cut], groups[cut:]])
        elif roll < 0.01:
            # Cut the leader off: the split-brain case check-quorum exists for.
            leaders = [n for n in c.alive() if c.engine(n).role == LEADER]
            if leaders:
                c.partition([leaders[:1], [n for n in names if n != leaders[0]]])
        elif roll < 0.015:
            c.heal()
        elif roll < 0.02:
            crashed = [n for n in names if c.nodes[n].engine is None]
            if len(crashed) < f:
                c.crash(rng.choice(c.alive()))
        elif roll < 0.03:
            crashed = [n for n in names if c.nodes[n].engine is None]
            if crashed:
                c.restart(rng.choice(crashed))
        if rng.random() < 0.2:
            c.nodes[rng.choice(names)].pool += rng.randrange(1, 5)
        chaos_step(c, rng, drop=drop, dup=0.05)
        if rng.random() < 0.05:
            sync_laggards(c)
    return c


def settle(c: Cluster, ms: int = 6000) -> None:
    c.heal()
    for name in sorted(c.nodes):
        if c.nodes[name].engine is None:
            c.restart(name)
    rng = random.Random(0)
    for _ in range(ms // STEP_MS):
        chaos_step(c, rng, drop=0.0, dup=0.0)
        sync_laggards(c)


@pytest.mark.parametrize("seed", range(10))
def test_chaos_is_safe_and_then_live(seed: int) -> None:
    names = ("n1", "n2", "n3") if seed % 2 else ("n1", "n2", "n3", "n4", "n5")
    params: dict[str, int | str] = {"max_entries_per_msg": 3, "retain_entries": 4}
    c = run_chaos(seed, names, steps=1500, params=params)
    c.check_chains()
    before = max(n.height for n in c.nodes.values())
    for name in names:
        c.nodes[name].pool += 1
    settle(c)
    heights = {name: node.height for name, node in c.nodes.items()}
    assert len(set(heights.values())) == 1, heights
    assert heights["n1"] > before  # the healed cluster still makes progress
    leaders = [n for n in c.alive() if c.engine(n).role == LEADER]
    assert len(leaders) == 1


@pytest.mark.parametrize("seed", range(3))
def test_restart_rebuilds_exactly_the_durable_state(seed: int) -> None:
    c = run_chaos(100 + seed, ("n1", "n2", "n3"), steps=600, params={"retain_entries": 2})
    for name in c.alive():
        engine = c.engine(name)
        state = durable(engine)
        c.crash(name)
        c.restart(name)
        rebuilt = c.engine(name)
        assert durable(rebuilt) == state


# ---- garbage from peers ----------------------------------------------------------------------
names_st = st.sampled_from(["n1", "n2", "n3"])
small = st.integers(min_value=0, max_value=8)
hashes = st.one_of(st.just(GENESIS), st.just(ZERO_HASH), st.binary(min_size=32, max_size=32))


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    term = draw(small)
    header = Header(
        "c",
        "main",
        draw(small),
        draw(hashes),
        0,
        draw(names_st),
        ZERO_HASH,
        ZERO_HASH,
        ZERO_HASH,
        0,
        draw(st.one_of(st.just(encode_term(term)), st.binary(max_size=3))),
    )
    return Block(header, [])


entries_st = st.lists(st.builds(Entry, small, st.one_of(st.none(), blocks())), max_size=4)
signers = [b"cert:n1", b"cert:n2", b"x"]
certs_st = st.lists(
    st.builds(
        CommitCertificate,
        small,
        hashes,
        st.lists(
            st.builds(BlockSignature, st.sampled_from([b"cert:n1", b"cert:n2", b"x"]), st.binary(max_size=64))
        ),
    ),
    max_size=3,
)
messages = st.one_of(
    st.builds(RequestVote, small, small, small, st.booleans()),
    st.builds(RequestVoteResponse, small, st.booleans(), st.booleans()),
    st.builds(AppendEntries, small, small, small, entries_st, small, small, certs_st),
    st.builds(
        AppendEntriesResponse,
        small,
        st.booleans(),
        small,
        small,
        small,
        st.lists(st.builds(BlockAck, small, st.binary(max_size=64)), max_size=3),
    ),
    st.builds(InstallSnapshot, small, small, small, small, hashes),
    st.integers(),
    st.text(max_size=5),
    st.none(),
)
injection = st.tuples(st.integers(min_value=0, max_value=59), names_st, names_st, messages)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(injection, max_size=25), st.integers(min_value=0, max_value=3))
def test_garbage_from_peers_never_raises_and_never_forks(
    injections: list[tuple[int, str, str, object]], seed: int
) -> None:
    c = Cluster(("n1", "n2", "n3"), echo=False)
    rng = random.Random(seed)
    by_step: dict[int, list[tuple[str, str, object]]] = {}
    for step, sender, dest, message in injections:
        by_step.setdefault(step, []).append((sender, dest, message))
    for step in range(60):
        if step % 5 == 0:
            c.nodes[rng.choice(["n1", "n2", "n3"])].pool += 1
        for sender, dest, message in by_step.get(step, []):
            if c.nodes[dest].engine is not None:
                c.step(dest, PeerMessage(sender, message))
        for _ in range(10):  # 100 ms per step, messages delivered every 10 ms
            chaos_step(c, rng, drop=0.05, dup=0.05)
    c.check_chains()


def test_a_certificate_needs_real_signatures_from_distinct_validators() -> None:
    c = Cluster(("n1", "n2", "n3"), echo=False)
    n2 = c.engine("n2")
    b = Block(
        Header("c", "main", 1, GENESIS, 0, "n1", ZERO_HASH, ZERO_HASH, ZERO_HASH, 0, encode_term(1)), []
    )
    own = BlockSigner(b"cert:n1", key_of("n1")).sign_block(b.hash)
    forged = [
        [own, own],  # one validator twice
        [own, BlockSignature(b"cert:n3", b"\x00" * 64)],  # a bad signature
        [own, BlockSignature(b"cert:mallory", own.signature)],  # not a validator
    ]
    for sigs in forged:
        ae = AppendEntries(1, 0, 0, [Entry(1), Entry(1, b)], 2, 1, [CommitCertificate(1, b.hash, sigs)])
        actions = n2.step(PeerMessage("n1", ae))
        assert not any(isinstance(a, CommitBlock) for a in actions)
    good = [own, BlockSigner(b"cert:n3", key_of("n3")).sign_block(b.hash)]
    ae = AppendEntries(1, 2, 1, [], 2, 1, [CommitCertificate(1, b.hash, good)])
    assert any(isinstance(a, CommitBlock) for a in n2.step(PeerMessage("n1", ae)))
