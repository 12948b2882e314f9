"""Property tests: whatever a byzantine replica sends, and whatever the network does, no two
correct replicas commit different blocks at one height, nothing raises, and once the network
behaves the correct replicas commit again.

The cluster harness raises SafetyViolation on any conflicting commit or bad certificate, so
every step below is checked, not only the end state.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pbft_harness import Cluster, node_key

from consortia.consensus.interface import PeerMessage
from consortia.consensus.pbft_certs import plan_new_view
from consortia.consensus.pbft_messages import (
    CheckpointProof,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    ViewChange,
    Vote,
    new_view_bytes,
    preprepare_bytes,
    view_change_bytes,
)
from consortia.crypto import ZERO_HASH

NAMES = ["n0", "n1", "n2", "n3"]
# PBFT_EXAMPLES=5000 explores far more (and randomly) than the default run, which stays fast.
_EXPLORE = int(os.environ.get("PBFT_EXAMPLES", "0"))
PROPERTY_SETTINGS = settings(
    max_examples=_EXPLORE or 60,
    deadline=10_000 if _EXPLORE else None,  # exploring, a slow example is a finding too
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=not _EXPLORE,
)

recipients = st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True)
labels = st.sampled_from(["A", "B"])
vote = st.tuples(
    st.just("vote"),
    st.sampled_from(["pre-prepare", "pre-prepare", "prepare", "commit", "checkpoint"]),
    recipients,
    st.sampled_from([0, 0, 1, 1, 2, 4]),  # view
    st.sampled_from([1, 1, 2, 3]),  # seq
    labels,
    st.sampled_from([True, True, True, False]),  # a valid block
    st.sampled_from([False, False, False, True]),  # a bad signature
)


def weighted(
    choices: dict[str, tuple[int, st.SearchStrategy[tuple[object, ...]]]],
) -> st.SearchStrategy[tuple[object, ...]]:
    """One step, its kind drawn with the given weights."""
    kinds = [kind for kind, (weight, _) in choices.items() for _ in range(weight)]
    return st.sampled_from(kinds).flatmap(lambda kind: choices[kind][1])


byzantine_step = weighted(
    {
        "vote": (4, vote),
        "equivocate": (2, st.tuples(st.just("equivocate"), recipients, st.sampled_from([1, 1, 2]))),
        "deliver": (6, st.tuples(st.just("deliver"), st.integers(1, 30))),
        "view-change": (1, st.tuples(st.just("view-change"), recipients, st.integers(1, 5), st.booleans())),
        "new-view": (1, st.tuples(st.just("new-view"), recipients, st.integers(0, 2))),
        "replay": (1, st.tuples(st.just("replay"), st.integers(0, 10_000))),
        "garbage": (
            1,
            st.tuples(st.just("garbage"), recipients, st.sampled_from([None, 7, b"x", "pp", (1, 2)])),
        ),
        "drop": (1, st.tuples(st.just("drop"), st.integers(1, 5))),
        "tick": (2, st.tuples(st.just("tick"), st.sampled_from([10, 10, 300, 2500]))),
        "txs": (1, st.tuples(st.just("txs"), st.integers(1, 3))),
    }
)


class Byzantine:
    """One replica that holds its own key and everything it has seen on the network, and
    sends whatever it likes."""

    def __init__(self, c: Cluster, name: str) -> None:
        self.c = c
        self.name = name
        self.index = c.names.index(name)  # it is primary of views index, index + 4, ...
        self.key = node_key(name)
        self.honest = [n for n in c.names if n != name]

    def is_primary(self, view: int) -> bool:
        return bool(view % len(self.c.names) == self.index)

    def certs(self) -> list[PreparedCert]:
        """Valid prepared certificates it can assemble: its own pre-prepare signatures for views
        it leads, plus prepares that correct replicas sent."""
        found: dict[tuple[int, int, bytes], dict[str, Vote]] = {}
        for sender, m in self.c.sent_log:
            if isinstance(m, Prepare) and self.is_primary(m.view) and sender != self.name:
                found.setdefault((m.view, m.seq, m.digest), {})[sender] = Vote(sender, m.signature)
        certs = []
        for (view, seq, digest), votes in sorted(found.items()):
            if len(votes) >= self.c.quorum - 1:
                sig = self.key.sign(preprepare_bytes(view, seq, digest))
                certs.append(PreparedCert(view, seq, digest, sig, [votes[n] for n in sorted(votes)]))
        return certs

    def view_change(self, new_view: int, forged: bool) -> ViewChange:
        certs = {c.seq: c for c in self.certs() if c.view < new_view}
        prepared = [certs[s] for s in sorted(certs)]
        if forged:  # a certificate whose prepares it signed itself
            digest = bytes(32)
            sig = self.key.sign(preprepare_bytes(0, 1, digest))
            prepared = [PreparedCert(0, 1, digest, sig, [Vote(n, b"\x01" * 64) for n in self.honest])]
        vc = ViewChange(new_view, self.name, CheckpointProof(0, ZERO_HASH, []), prepared, b"")
        return ViewChange(new_view, self.name, vc.stable, prepared, self.key.sign(view_change_bytes(vc)))

    def new_view(self, skip: int) -> NewView | None:
        """A NEW-VIEW for the latest view it leads that correct replicas asked for, built from a
        chosen subset of their view changes: different subsets can give different O sets,
        which is the freedom a byzantine new primary has."""
        asked = [m for _, m in self.c.sent_log if isinstance(m, ViewChange) and self.is_primary(m.new_view)]
        if not asked:
            return None
        view = max(m.new_view for m in asked)
        seen = {m.replica: m for m in asked if m.new_view == view and m.replica != self.name}
        chosen = [seen[n] for n in sorted(seen)][skip:]
        chosen.append(self.view_change(view, forged=False))
        if len(chosen) < self.c.quorum:
            return None
        plan = plan_new_view(chosen)
        pps = [PrePrepare(view, s, d, self.key.sign(preprepare_bytes(view, s, d))) for s, d in plan.o_set]
        return NewView(view, chosen, pps, self.key.sign(new_view_bytes(view, chosen, pps)))

    def act(self, step: tuple[object, ...], rng: random.Random) -> None:
        c = self.c
        kind, args = step[0], step[1:]
        if kind == "equivocate":
            # Block A to some correct replicas, block B to the others, in the view it leads.
            targets, seq = _names(c, args[0]), _int(args[1])
            some = [n for n in targets if n != self.name]
            rest = [n for n in self.honest if n not in some]
            for label, group in (("A", some), ("B", rest)):
                block = c.block_for(label, seq, self.index, self.name)
                if group:
                    c.inject(self.name, group, c.forge(self.name, "pre-prepare", self.index, seq, block))
                    c.inject(self.name, group, c.forge(self.name, "commit", self.index, seq, block))
        elif kind == "vote":
            v, s = _int(args[2]), _int(args[3])
            block = c.block_for(str(args[4]), s, v, self.name, valid=args[5] is True)
            message = c.forge(self.name, str(args[0]), v, s, block, bad_sig=args[6] is True)
            c.inject(self.name, _names(c, args[1]), message)
        elif kind == "view-change":
            c.inject(self.name, _names(c, args[0]), self.view_change(_int(args[1]), args[2] is True))
        elif kind == "new-view":
            nv = self.new_view(_int(args[1]))
            if nv is not None:
                c.inject(self.name, _names(c, args[0]), nv)
        elif kind == "replay":
            if c.sent_log:
                sender, message = c.sent_log[_int(args[0]) % len(c.sent_log)]
                for name in self.honest:
                    if name != sender:
                        c.feed(name, PeerMessage(sender, message))
        elif kind == "garbage":
            c.inject(self.name, _names(c, args[0]), args[1])
        elif kind == "deliver":
            deliver_shuffled(c, _int(args[0]), rng)
        elif kind == "drop":
            for _ in range(min(_int(args[0]), len(c.queue))):
                c.queue.popleft()
        elif kind == "tick":
            c.tick(_int(args[0]))
        elif kind == "txs":
            c.txs(_int(args[0]))


def _int(x: object) -> int:
    assert isinstance(x, int)
    return x


def _names(c: Cluster, indexes: object) -> list[str]:
    assert isinstance(indexes, list)
    return [str(c.names[_int(i)]) for i in indexes]


def deliver_shuffled(c: Cluster, count: int, rng: random.Random) -> None:
    """Deliver `count` queued messages in a random order (the network reorders)."""
    queue = list(c.queue)
    rng.shuffle(queue)
    c.queue.clear()
    c.queue.extend(queue[count:])
    for src, dst, message in queue[:count]:
        c.deliver_one(src, dst, message)


def settle(c: Cluster, ms: int, target: int) -> None:
    """A well-behaved network for up to `ms`: everything delivered, lagging replicas synced,
    until every correct replica reaches `target`."""
    c.auto_sync = True
    c.txs(1)
    for _ in range(ms // 100):
        c.tick(100)
        c.stabilize()
        if min(n.height for n in c.live()) >= target:
            return


@PROPERTY_SETTINGS
@given(
    byzantine=st.sampled_from(["n0", "n1"]),  # the first primary, or the first new primary
    steps=st.lists(byzantine_step, min_size=30, max_size=80),
    seed=st.integers(0, 2**16),
)
def test_a_byzantine_replica_cannot_split_or_stall_the_correct_ones(
    byzantine: str, steps: list[tuple[object, ...]], seed: int
) -> None:
    c = Cluster(4, params={"checkpoint_interval": 2, "window": 8})
    c.make_byzantine(byzantine)
    byz = Byzantine(c, byzantine)
    rng = random.Random(seed)
    c.txs(1)
    c.tick(10)
    for step in steps:
        byz.act(step, rng)
    target = max(n.height for n in c.live()) + 1
    settle(c, 60_000, target)  # long enough for the bounded backoff to reach a correct primary
    heights = [n.height for n in c.live()]
    assert min(heights) >= target, f"no progress after the byzantine replica went quiet: {c.heights()}"


network_step = weighted(
    {
        "deliver": (8, st.tuples(st.just("deliver"), st.integers(1, 40))),
        "tick": (4, st.tuples(st.just("tick"), st.sampled_from([10, 10, 100, 600, 2500]))),
        "drop": (1, st.tuples(st.just("drop"), st.integers(1, 10))),
        "duplicate": (1, st.tuples(st.just("duplicate"), st.integers(1, 5))),
        "txs": (2, st.tuples(st.just("txs"), st.integers(1, 5))),
        "crash": (1, st.tuples(st.just("crash"), st.sampled_from(["n0", "n1", "n2", "n3"]))),
        "partition": (1, st.tuples(st.just("partition"), st.sampled_from(["n0", "n1", "n2", "n3"]))),
        "heal": (1, st.tuples(st.just("heal"))),
        "sync": (1, st.tuples(st.just("sync"), st.sampled_from(["n0", "n1", "n2", "n3"]))),
    }
)


@PROPERTY_SETTINGS
@given(steps=st.lists(network_step, min_size=30, max_size=120), seed=st.integers(0, 2**16))
def test_crashes_partitions_and_a_lossy_network_never_split_the_chain(
    steps: list[tuple[object, ...]], seed: int
) -> None:
    """At most one replica (f) is down or cut off at a time; every crash is followed by a
    restart from its persisted state, and messages are lost, duplicated and reordered."""
    c = Cluster(4, params={"checkpoint_interval": 3, "window": 9, "view_timeout_ms": 500})
    rng = random.Random(seed)
    down: str | None = None
    c.txs(5)
    for step in steps:
        kind = step[0]
        if kind == "deliver":
            deliver_shuffled(c, _int(step[1]), rng)
        elif kind == "drop":
            for _ in range(min(_int(step[1]), len(c.queue))):
                c.queue.popleft()
        elif kind == "duplicate":
            if c.queue:
                for _ in range(_int(step[1])):
                    c.queue.append(rng.choice(list(c.queue)))
        elif kind == "tick":
            c.tick(_int(step[1]))
        elif kind == "txs":
            c.txs(_int(step[1]))
        elif kind in ("crash", "partition"):
            name = str(step[1])
            if down is not None:  # bring the previous one back first: at most f = 1 at a time
                c.groups = None
                if c.nodes[down].engine is None:
                    c.restart(down)
            down = name
            if kind == "crash":
                c.crash(name)
            else:
                c.groups = [{name}, {n for n in c.names if n != name}]
        elif kind == "heal":
            c.groups = None
            if down is not None and c.nodes[down].engine is None:
                c.restart(down)
            down = None
        elif kind == "sync" and c.nodes[str(step[1])].engine is not None:
            c.sync(str(step[1]))
    c.groups = None
    if down is not None and c.nodes[down].engine is None:
        c.restart(down)
    target = max(c.heights().values()) + 1
    settle(c, 40_000, target)
    assert min(c.heights().values()) >= target, f"no progress after the network healed: {c.heights()}"
