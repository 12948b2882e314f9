"""PBFT engine invariants: bounded memory and backoff, commit certificates, configuration,
restart, and byzantine inputs (forged certificates, floods, replays)."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from typing import Any, Union

import msgspec
import pytest
from pbft_harness import Cluster, Node, cert_der, make_peer, node_key

from consortia.consensus.interface import Action, Event, PeerMessage, ProposalExecuted, Tick
from consortia.consensus.pbft import (
    MESSAGE_TYPES,
    PbftConfigError,
    PbftEngine,
    PbftStateError,
    verify_commit_certificate,
)
from consortia.consensus.pbft_messages import (
    STABLE_KEY,
    Checkpoint,
    CheckpointProof,
    Commit,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    ViewChange,
    Vote,
    new_view_bytes,
    prepare_bytes,
    preprepare_bytes,
    view_change_bytes,
)
from consortia.crypto import ZERO_HASH
from consortia.types import BlockSignature, CommitCertificate, commit_signing_bytes, decode, encode


def run_blocks(c: Cluster, blocks: int, txs: int = 5) -> None:
    start = min(c.heights().values())
    for _ in range(blocks * 4):
        c.txs(txs)
        c.tick(10)
        c.stabilize()
        if min(n.height for n in c.live()) >= start + blocks:
            return
    raise AssertionError(f"no progress: {c.heights()}")


# ---- normal case and memory ---------------------------------------------------------------
def test_message_log_and_persisted_state_stay_bounded_over_200_blocks() -> None:
    c = Cluster(4, params={"checkpoint_interval": 10, "window": 64})
    samples: list[int] = []
    persisted: list[int] = []
    for _ in range(200):
        run_blocks(c, 1)
        c.take_lines()
        samples.append(max(c.engine(n).log_entries() for n in c.names))
        persisted.append(max(len(c.nodes[n].persisted) for n in c.names))
    assert c.heights() == {"n0": 200, "n1": 200, "n2": 200, "n3": 200}
    assert {c.engine(n).status()["stable_checkpoint"] for n in c.names} == {200}
    # Between checkpoints a replica holds at most two intervals of committed slots (a
    # certificate and pre-prepare each) plus checkpoint votes: nothing grows with height.
    assert max(samples) <= 2 * 10 * 2 + 2 * 4
    assert max(samples[100:]) <= max(samples[:100])
    assert max(persisted) <= 2 * 10 + 2  # slot records below a stable checkpoint are deleted


def test_commit_certificates_verify_and_meet_a_stricter_channel_quorum() -> None:
    c = Cluster(7, commit_quorum=6)  # f = 2, 2f+1 = 5, but the channel asks for 6
    run_blocks(c, 2)
    for node in c.nodes.values():
        assert node.height == 2
    c.take_lines()
    # n5 and n6 go mute: the other five are a PBFT quorum but not a certificate, so they wait;
    # n5 and n6 still hear the five and, with their own commits, reach six.
    c.silenced.update({"n5", "n6"})
    c.txs(1)
    c.tick(10)
    c.stabilize()
    commits = [line for line in c.take_lines() if ": commit h3" in line]
    assert [line.split(":")[0] for line in commits] == ["n5", "n6"]
    assert all(line.endswith("sigs=6") for line in commits)
    c.silenced.clear()
    c.run(1000)
    assert min(c.heights().values()) >= 3


def test_verify_commit_certificate() -> None:
    peers = tuple(make_peer(f"n{i}") for i in range(4))
    h = bytes(range(32))
    sig = {p.name: node_key(p.name).sign(commit_signing_bytes(h)) for p in peers}

    def cert(names: list[str], height: int = 5, digest: bytes = h) -> CommitCertificate:
        return CommitCertificate(height, digest, [BlockSignature(cert_der(n), sig[n]) for n in names])

    assert verify_commit_certificate(peers, h, 5, cert(["n0", "n1", "n2"]), 3)
    assert verify_commit_certificate(peers, h, 5, cert(["n0", "n1", "n2", "n3"]), 3)
    assert not verify_commit_certificate(peers, h, 5, cert(["n0", "n1"]), 3)  # too few
    assert not verify_commit_certificate(peers, h, 6, cert(["n0", "n1", "n2"]), 3)  # other height
    assert not verify_commit_certificate(peers, h, 5, cert(["n0", "n1", "n2"], digest=ZERO_HASH), 3)
    assert not verify_commit_certificate(peers, ZERO_HASH, 5, cert(["n0", "n1", "n2"]), 3)
    assert not verify_commit_certificate(peers, h, 5, cert(["n0", "n0", "n1", "n2"]), 3)  # duplicate
    assert not verify_commit_certificate(peers, h, 5, cert(["n0", "n1", "n2"]), 0)
    stranger = BlockSignature(b"cert:n9", node_key("n9").sign(commit_signing_bytes(h)))
    good = cert(["n0", "n1", "n2"])
    assert not verify_commit_certificate(peers, h, 5, replace_sigs(good, [*good.signatures, stranger]), 3)
    forged = BlockSignature(cert_der("n3"), sig["n0"])  # n0's signature claimed by n3
    assert not verify_commit_certificate(peers, h, 5, replace_sigs(good, [*good.signatures, forged]), 3)


def replace_sigs(cert: CommitCertificate, sigs: list[BlockSignature]) -> CommitCertificate:
    return CommitCertificate(cert.height, cert.block_hash, sigs)


# ---- configuration and restart -------------------------------------------------------------
def test_bad_setups_are_refused() -> None:
    c = Cluster(4)
    base = c.setup(c.nodes["n1"])
    with pytest.raises(PbftConfigError):
        PbftEngine.from_setup(replace(base, node_id="n9"))
    with pytest.raises(PbftConfigError):
        PbftEngine.from_setup(replace(base, peers=tuple(reversed(base.peers))))
    with pytest.raises(PbftConfigError):
        PbftEngine.from_setup(replace(base, commit_quorum=5))
    for params in ({"window": 0}, {"view_timeout_ms": "soon"}, {"window": 5, "checkpoint_interval": 10}):
        with pytest.raises(PbftConfigError):
            PbftEngine.from_setup(replace(base, params=params))
    with pytest.raises(PbftStateError):
        PbftEngine.from_setup(replace(base, persisted={STABLE_KEY: b"\xc1garbage"}))


def test_restarted_primary_does_not_propose_twice_in_one_view() -> None:
    c = Cluster(4)
    c.txs(1)
    c.tick(10)
    c.drop()  # the pre-prepare for (view 0, seq 1) never leaves
    c.crash("n0")
    c.restart("n0")
    c.take_lines()
    for _ in range(10):
        c.tick(100)
        c.stabilize()
    lines = c.take_lines()
    assert not any(line.startswith("n0: build") for line in lines)
    # The backups replace it, and the block that commits is n1's, from view 1.
    c.run(2000)
    assert c.nodes["n1"].chain[0].header.proposer == "n1"
    assert c.engine("n0").status()["view"] == c.engine("n1").status()["view"] >= 1


def test_replica_restarted_inside_a_view_takes_its_new_view_again() -> None:
    """The O set lives in memory: a backup restarted in view 1 needs view 1's NEW-VIEW once
    more to re-issue it (what it persisted keeps it from contradicting itself)."""
    c = Cluster(4)
    _prepared_then_primary_down(c)
    c.tick(2000)
    c.deliver()  # view changes: n1 sends NEW-VIEW
    c.deliver()  # NEW-VIEW: n2 and n3 enter view 1 and prepare; their votes are lost
    c.drop()
    c.crash("n2")
    c.restart("n2")
    assert c.engine("n2").status()["view"] == 1
    c.take_lines()
    c.run(1500)  # n1, stuck, re-sends its NEW-VIEW
    assert c.heights() == {"n1": 1, "n2": 1, "n3": 1, "n0": 0}
    assert {c.engine(n).status()["view"] for n in ("n1", "n2", "n3")} == {1}


def test_lagging_replica_jumps_by_block_sync_and_rejoins() -> None:
    c = Cluster(4, params={"checkpoint_interval": 5, "window": 10})
    c.crash("n3")
    run_blocks(c, 30)
    c.restart("n3")
    c.sync("n3", jump=True)  # one Committed 30 heights ahead: past its window
    c.take_lines()
    run_blocks(c, 1)
    assert any(line.startswith("n3: commit h31") for line in c.take_lines())


# ---- backoff ---------------------------------------------------------------------------
def test_view_change_timeouts_back_off_but_stay_bounded() -> None:
    base, cap = 100, 1600
    c = Cluster(4, params={"view_timeout_ms": base, "view_timeout_max_ms": cap, "resend_ms": 10**9})
    c.crash("n0")
    c.txs(1)
    sent_at: list[int] = []
    for _ in range(800):
        c.tick(10)
        c.deliver()
        c.drop(lambda src, dst, m: isinstance(m, NewView))  # every view change fails
        for line in c.take_lines():
            if line.startswith("n2 -> all: view-change"):
                sent_at.append(c.now)
    waits = [b - a for a, b in itertools.pairwise(sent_at)]
    assert len(waits) >= 5
    # Within a tick or two: the primary of a failed view does not time out on itself while
    # its pre-prepare is out; it follows the others' view change one delivery later.
    slack = 20
    assert all(b >= a - slack for a, b in itertools.pairwise(waits))  # doubling...
    assert waits[0] == 2 * base and all(abs(b - 2 * a) <= slack for a, b in itertools.pairwise(waits[:4]))
    assert max(waits) <= cap + slack  # ...but never past the cap
    assert abs(waits[-1] - cap) <= slack and abs(waits[-2] - cap) <= slack
    assert c.engine("n2").status()["timeout_ms"] == cap


def test_a_view_change_lost_on_the_way_does_not_strand_the_others() -> None:
    """n3's VIEW-CHANGE for view 1 is lost; n3 saw 2f+1 for view 1, times out and asks for
    view 2. Only its latest request is re-sent, so n1 and n2 never see 2f+1 for view 1 — but a
    request for a later view counts: their timer runs, they move on, and view 2 works."""
    c = Cluster(4, params={"resend_ms": 300})
    c.tick(10)
    c.crash("n0")
    c.txs(1)
    c.silenced.add("n3")
    c.tick(2000)
    while c.engine("n3").status()["view"] < 2:
        c.tick(100)
        c.stabilize()
    assert [c.engine(n).status()["view"] for n in ("n1", "n2")] == [1, 1]
    c.silenced.clear()
    for _ in range(100):
        c.tick(100)
        c.stabilize()
        if min(c.heights()[n] for n in ("n1", "n2", "n3")) >= 1:
            break
    assert [c.engine(n).status()["view"] for n in ("n1", "n2", "n3")] == [2, 2, 2]
    assert min(c.heights()[n] for n in ("n1", "n2", "n3")) == 1


# ---- byzantine input -------------------------------------------------------------------------
def test_flood_of_future_messages_is_bounded_per_sender() -> None:
    c = Cluster(4, params={"buffer_per_sender": 16})
    c.make_byzantine("n3")
    key = node_key("n3")
    for view in range(1, 2001):
        digest = bytes([view % 256]) * 32
        c.feed("n1", PeerMessage("n3", Prepare(view, 1, digest, key.sign(prepare_bytes(view, 1, digest)))))
    engine = c.engine("n1")
    assert engine.log_entries() <= 16
    assert engine.drop_reasons()["flood"] == 2000 - 16
    run_blocks(c, 1)  # and the group works as before


def test_replayed_messages_change_nothing() -> None:
    c = Cluster(4, params={"checkpoint_interval": 2})
    run_blocks(c, 5)
    c.take_lines()
    old = list(c.sent_log)
    rng = random.Random(7)
    rng.shuffle(old)
    for sender, message in old:
        for name in c.names:
            if name != sender:
                c.feed(name, PeerMessage(sender, message))
    # At most a replica re-sends its own old votes to a peer that seems to lag; nothing new.
    sent = {id(m) for _, m in c.sent_log}
    for line in c.take_lines():
        assert " -> " in line, line
    assert {id(m) for _, m in c.sent_log} == sent
    assert c.heights() == {"n0": 5, "n1": 5, "n2": 5, "n3": 5}
    assert all(c.engine(n).status()["dropped_msgs"] == 0 for n in c.names)


def test_garbage_and_mistyped_messages_are_dropped() -> None:
    c = Cluster(4)
    e = c.engine("n1")
    d = bytes(32)
    junk: list[object] = [
        None,
        5,
        "prepare",
        b"\x00",
        Prepare("zero", 1, d, b""),  # type: ignore[arg-type]
        Prepare(0, -1, d, b""),
        Prepare(0, 2**70, d, b""),
        Prepare(0, 1, b"short", b""),
        Prepare(True, 1, d, b""),
        Commit(0, 1, d, b"x" * 1000, b""),
        PrePrepare(0, 1, d, b"", block="not a block"),  # type: ignore[arg-type]
        ViewChange(1, "n0", CheckpointProof(0, ZERO_HASH, []), [None], b""),  # type: ignore[list-item]
    ]
    for message in junk:
        assert e.step(PeerMessage("n0", message)) == []
    assert e.drop_reasons()["malformed"] == len(junk)
    assert e.step(PeerMessage("n7", Prepare(0, 1, d, b""))) == []
    assert e.drop_reasons()["not_a_member"] == 1


def _view_changes(c: Cluster, view: int) -> dict[str, ViewChange]:
    return {m.replica: m for _, m in c.sent_log if isinstance(m, ViewChange) and m.new_view == view}


def _prepared_then_primary_down(c: Cluster) -> None:
    """n1..n3 prepare block 1 in view 0 but never commit it; then the primary n0 is gone."""
    c.txs(1)
    c.tick(10)
    c.deliver()  # pre-prepare
    c.deliver()  # prepares
    c.drop()  # commits lost
    c.crash("n0")


def test_forged_certificates_in_view_change_are_dropped() -> None:
    c = Cluster(4)
    _prepared_then_primary_down(c)
    c.make_byzantine("n3")
    key = node_key("n3")
    digest = bytes(32)

    def signed(vc: ViewChange) -> ViewChange:
        return replace_vc(vc, signature=key.sign(view_change_bytes(vc)))

    # A prepared certificate whose prepares are all the byzantine replica's own.
    lone = PreparedCert(0, 1, digest, b"\x00" * 64, [Vote("n3", key.sign(prepare_bytes(0, 1, digest)))])
    fake_votes = PreparedCert(
        0,
        1,
        digest,
        b"\x00" * 64,
        [Vote(n, key.sign(prepare_bytes(0, 1, digest))) for n in ("n1", "n2", "n3")],
    )
    bad_stable = CheckpointProof(10, digest, [])
    for vc in (
        ViewChange(1, "n3", CheckpointProof(0, ZERO_HASH, []), [lone], b""),
        ViewChange(1, "n3", CheckpointProof(0, ZERO_HASH, []), [fake_votes], b""),
        ViewChange(1, "n3", bad_stable, [], b""),
    ):
        c.inject("n3", ["n1"], signed(vc))
    assert c.engine("n1").drop_reasons()["bad_view_change"] == 3
    # An honest-looking view change, but claimed by another replica.
    honest = ViewChange(1, "n2", CheckpointProof(0, ZERO_HASH, []), [], b"")
    c.inject("n3", ["n1"], signed(honest))
    assert c.engine("n1").drop_reasons()["wrong_replica"] == 1
    assert c.engine("n1").status()["view_changing"] == 0


def replace_vc(vc: ViewChange, **changes: object) -> ViewChange:
    return msgspec.structs.replace(vc, **changes)


def test_new_view_that_drops_a_prepared_request_is_refused() -> None:
    """A byzantine new primary (n1) must re-issue what a quorum prepared; backups recompute
    the O set and refuse a NEW-VIEW that leaves it out, or that lacks a quorum."""
    c = Cluster(4)
    _prepared_then_primary_down(c)
    c.make_byzantine("n1")
    c.tick(2000)  # n2, n3 time out
    c.deliver()
    c.take_lines()
    key = node_key("n1")
    vcs = _view_changes(c, 1)
    assert set(vcs) == {"n2", "n3"} and all(vc.prepared for vc in vcs.values())
    own = ViewChange(1, "n1", CheckpointProof(0, ZERO_HASH, []), [], b"")
    own = replace_vc(own, signature=key.sign(view_change_bytes(own)))
    quorum = [own, vcs["n2"], vcs["n3"]]

    def new_view(view_changes: list[ViewChange], o_set: list[PrePrepare]) -> NewView:
        return NewView(1, view_changes, o_set, key.sign(new_view_bytes(1, view_changes, o_set)))

    c.inject("n1", ["n2", "n3"], new_view(quorum, []))  # O set omits the prepared block
    c.inject("n1", ["n2", "n3"], new_view(quorum[1:], []))  # 2 view changes: no quorum
    digest = vcs["n2"].prepared[0].digest
    other = bytes(32)
    forged_o = [PrePrepare(1, 1, other, key.sign(preprepare_bytes(1, 1, other)))]
    c.inject("n1", ["n2", "n3"], new_view(quorum, forged_o))  # O set names another block
    for name in ("n2", "n3"):
        assert c.engine(name).drop_reasons()["bad_new_view"] == 3
        assert c.engine(name).status()["view_changing"] == 1
    good_o = [PrePrepare(1, 1, digest, key.sign(preprepare_bytes(1, 1, digest)))]
    c.inject("n1", ["n2", "n3"], new_view(quorum, good_o))
    assert all(c.engine(n).status()["view_changing"] == 0 for n in ("n2", "n3"))
    assert [line for line in c.take_lines() if "-> all: prepare v1 s1" in line] == [
        f"n2 -> all: prepare v1 s1 {digest.hex()[:4]}",
        f"n3 -> all: prepare v1 s1 {digest.hex()[:4]}",
    ]


def test_checkpoint_votes_are_verified() -> None:
    c = Cluster(4, params={"checkpoint_interval": 2})
    run_blocks(c, 1)
    key = node_key("n3")
    for sender in ("n0", "n2", "n3"):  # signatures that do not verify for their senders
        c.feed("n1", PeerMessage(sender, Checkpoint(2, bytes(32), key.sign(b"something else"))))
    assert c.engine("n1").status()["stable_checkpoint"] == 0
    assert c.engine("n1").drop_reasons()["bad_signature"] == 3


# ---- the wire ----------------------------------------------------------------------------------
def test_every_message_type_round_trips_through_the_codec() -> None:
    c = Cluster(4, params={"checkpoint_interval": 1})
    _prepared_then_primary_down(c)
    c.tick(2000)
    c.stabilize()
    c.run(500)
    assert {type(m) for _, m in c.sent_log} == set(MESSAGE_TYPES)
    wire: Any = Union[MESSAGE_TYPES]  # noqa: UP007  # what the network decodes with
    for _, message in c.sent_log:
        assert decode(encode(message), wire) == message


def test_engine_never_reads_the_clock_between_ticks() -> None:
    """Two replicas built from one setup and fed one event stream act identically."""
    c = Cluster(4)
    setup = c.setup(c.nodes["n0"])
    a, b = PbftEngine.from_setup(setup), PbftEngine.from_setup(setup)
    for now in (0, 10, 3000, 7000):
        tick = Tick(now, pending_txs=3)
        assert a.step(tick) == b.step(tick)
    assert a.step(Tick(8000, 3)) == b.step(Tick(8000, 3))


# ---- checkpoints -------------------------------------------------------------------------------
def test_replica_still_executing_at_a_checkpoint_commits_it_without_block_sync() -> None:
    """n3 executes the block at the checkpoint height slowly: the others commit it and their
    CHECKPOINT votes reach n3 before its execution is done. n3 must keep the votes it holds
    for that height (it has not committed it) and commit the block itself."""
    deferred: list[ProposalExecuted] = []

    class SlowN3(Cluster):
        def _perform(self, node: Node, action: Action) -> Event | None:
            answer = super()._perform(node, action)
            if node.name == "n3" and isinstance(answer, ProposalExecuted):
                deferred.append(answer)
                return None
            return answer

    c = SlowN3(4, params={"checkpoint_interval": 2, "resend_ms": 10**9})
    c.auto_sync = False
    c.txs(1)
    c.tick(10)
    c.stabilize()
    for answer in deferred:  # height 1 executes in time
        c.feed("n3", answer)
    deferred.clear()
    c.stabilize()
    assert c.heights()["n3"] == 1
    c.txs(1)
    c.tick(10)
    c.stabilize()  # the others commit height 2 and reach a stable checkpoint at 2
    assert [c.heights()[n] for n in ("n0", "n1", "n2", "n3")] == [2, 2, 2, 1]
    assert c.engine("n3").status()["stable_checkpoint"] == 2
    assert len(deferred) == 1
    c.feed("n3", deferred.pop())  # n3's execution of height 2 finishes now
    c.stabilize()
    assert c.heights()["n3"] == 2
