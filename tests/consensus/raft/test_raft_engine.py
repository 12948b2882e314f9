"""Raft engine invariants that read better as plain tests than as transcripts."""

from __future__ import annotations

from typing import Any

import pytest
from raft_harness import GENESIS, Cluster, Node, key_of, peer_of

from consortia.consensus import (
    BlockSigner,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    PeerMessage,
    Persist,
    ProposalBuilt,
    Send,
    Tick,
)
from consortia.consensus.raft import (
    FOLLOWER,
    LEADER,
    MESSAGE_TYPES,
    RaftConfigError,
    RaftEngine,
    RaftParams,
    RaftStateError,
)
from consortia.consensus.raft_log import HARD_KEY, SNAP_KEY, HardState, entry_key
from consortia.consensus.raft_messages import (
    AppendEntries,
    AppendEntriesResponse,
    BlockAck,
    Entry,
    InstallSnapshot,
    RequestVote,
    RequestVoteResponse,
    check_message,
    encode_term,
)
from consortia.crypto import ZERO_HASH, sha256
from consortia.types import Block, BlockLimits, CommitCertificate, Header, decode, encode


def setup(name: str = "n1", peers: tuple[str, ...] = ("n1", "n2", "n3"), **kw: Any) -> EngineSetup:
    return EngineSetup(
        node_id=name,
        peers=tuple(peer_of(p) for p in peers),
        signer=BlockSigner(b"cert:" + name.encode(), key_of(name)),
        limits=BlockLimits(),
        height=kw.pop("height", 0),
        head=kw.pop("head", GENESIS),
        **kw,
    )


def block(height: int, parent: bytes, term: int, proposer: str = "n1") -> Block:
    tag = f"{proposer}/{height}/{term}".encode()
    h = Header(
        "c",
        "main",
        height,
        parent,
        height,
        proposer,
        sha256(tag),
        sha256(tag),
        ZERO_HASH,
        0,
        encode_term(term),
    )
    return Block(h, [])


def elected(names: tuple[str, ...] = ("n1", "n2", "n3"), **params: int) -> Cluster:
    c = Cluster(names, dict(params), echo=False)
    c.tick(names[0], 1000)
    c.stabilize()
    assert c.engine(names[0]).role == LEADER
    return c


# ---- messages ----------------------------------------------------------------------------
def test_every_message_round_trips_through_the_codec() -> None:
    b = block(1, GENESIS, 2)
    cert = CommitCertificate(1, b.hash, [])
    messages = [
        RequestVote(3, 7, 2, pre_vote=True),
        RequestVoteResponse(3, True),
        AppendEntries(3, 6, 2, [Entry(2, b), Entry(3)], 5, 1, [cert]),
        AppendEntriesResponse(3, False, 6, 4, 0, [BlockAck(1, b"s" * 64)]),
        InstallSnapshot(3, 9, 2, 4, b.hash),
    ]
    assert {type(m) for m in messages} == set(MESSAGE_TYPES)
    union = MESSAGE_TYPES[0] | MESSAGE_TYPES[1] | MESSAGE_TYPES[2] | MESSAGE_TYPES[3] | MESSAGE_TYPES[4]
    for m in messages:
        assert decode(encode(m), union) == m  # type: ignore[arg-type]
        assert check_message(m) == m


@pytest.mark.parametrize(
    "bad",
    [
        RequestVote(-1, 0, 0),
        RequestVote(2**63, 0, 0),
        RequestVote("1", 0, 0),  # type: ignore[arg-type]
        RequestVoteResponse(1, "yes"),  # type: ignore[arg-type]
        AppendEntries(1, 0, 0, "entries", 0, 1, []),  # type: ignore[arg-type]
        AppendEntries(1, 0, 0, [Entry(1, "block")], 0, 1, []),  # type: ignore[arg-type]
        AppendEntries(1, 0, 0, [], 0, 1, [CommitCertificate(1, b"short", [])]),
        AppendEntriesResponse(1, True, 0, 0, 0, [BlockAck(1, b"x" * 1000)]),
        InstallSnapshot(1, 1, 1, 1, b"short"),
        "not a message",
        None,
    ],
)
def test_malformed_messages_are_refused_and_counted(bad: object) -> None:
    assert check_message(bad) is None
    engine = RaftEngine.from_setup(setup())
    assert engine.step(PeerMessage("n2", bad)) == []
    assert engine.status()["dropped_msgs"] == 1


def test_messages_from_strangers_and_self_are_dropped() -> None:
    engine = RaftEngine.from_setup(setup())
    assert engine.step(PeerMessage("mallory", RequestVote(5, 0, 0))) == []
    assert engine.step(PeerMessage("n1", RequestVote(5, 0, 0))) == []
    assert engine.status()["dropped_msgs"] == 2
    assert engine.term == 0


# ---- persistence before replies -----------------------------------------------------------
def _persist_before_sends(actions: list[Any]) -> bool:
    seen_send = False
    for a in actions:
        if isinstance(a, Send):
            seen_send = True
        elif isinstance(a, Persist) and seen_send:
            return False
    return True


def test_vote_and_entries_are_persisted_before_the_reply() -> None:
    engine = RaftEngine.from_setup(setup("n2"))
    actions = engine.step(PeerMessage("n1", RequestVote(1, 0, 0)))
    assert [type(a) for a in actions] == [Persist, Send]
    assert actions[-1] == Send("n1", RequestVoteResponse(1, True))
    assert decode(engine_persisted(actions)[HARD_KEY], HardState) == HardState(1, "n1")
    b = block(1, GENESIS, 1)
    ae = AppendEntries(1, 0, 0, [Entry(1), Entry(1, b)], 0, 1, [])
    actions = engine.step(PeerMessage("n1", ae))
    assert _persist_before_sends(actions)
    keys = [a.key for a in actions if isinstance(a, Persist)]
    assert keys == [entry_key(1), entry_key(2)]
    reply = actions[-1]
    assert isinstance(reply, Send) and isinstance(reply.message, AppendEntriesResponse)
    assert reply.message.success and reply.message.index == 2
    (ack,) = reply.message.signatures
    assert peer_of("n2").verify(b"consortia/commit/v1\x00" + b.hash, ack.signature)


def engine_persisted(actions: list[Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for a in actions:
        if isinstance(a, Persist) and a.value is not None:
            out[a.key] = a.value
    return out


def test_a_vote_survives_a_restart() -> None:
    c = elected()
    n2 = c.nodes["n2"]
    assert n2.engine is not None
    term, vote = n2.engine.term, n2.engine.vote
    c.crash("n2")
    c.restart("n2")
    assert n2.engine is not None
    assert (n2.engine.term, n2.engine.vote) == (term, vote) == (1, "n1")
    # Same term, another candidate: refused, the vote was already cast.
    actions = n2.engine.step(PeerMessage("n3", RequestVote(1, 99, 1)))
    assert actions == [Send("n3", RequestVoteResponse(1, False))]


# ---- leases, pre-vote ----------------------------------------------------------------------
def test_a_follower_in_its_lease_ignores_a_higher_term_vote_request() -> None:
    c = elected()
    n2 = c.engine("n2")
    assert n2.step(PeerMessage("n3", RequestVote(9, 99, 9))) == []
    assert n2.term == 1 and n2.leader == "n1"
    # Once the lease has run out, the same request is answered (and its term adopted).
    c.tick("n2", 500)
    actions = n2.step(PeerMessage("n3", RequestVote(9, 99, 9)))
    assert n2.term == 9 and Send("n3", RequestVoteResponse(9, True)) in actions


def test_a_pre_vote_changes_neither_term_nor_vote() -> None:
    engine = RaftEngine.from_setup(setup("n2"))
    actions = engine.step(PeerMessage("n3", RequestVote(4, 0, 0, pre_vote=True)))
    assert actions == [Send("n3", RequestVoteResponse(4, True, pre_vote=True))]
    assert (engine.term, engine.vote) == (0, "")


# ---- one node ---------------------------------------------------------------------------
def test_a_single_validator_elects_itself_and_commits_alone() -> None:
    c = Cluster(["solo"], echo=False)
    c.tick("solo", 1000)
    node = c.nodes["solo"]
    assert node.engine is not None and node.engine.role == LEADER
    node.pool = 3
    c.tick("solo", 10)
    assert node.height == 1 and node.ledger[0].header.tx_count == 3
    c.tick("solo", 10)
    assert node.height == 1  # nothing left to build


def test_committed_without_progress_lets_the_leader_build_again() -> None:
    # The node runtime answers a build it could not make with Committed(current height).
    c = elected()
    n1 = c.engine("n1")
    actions = n1.step(Tick(2000, pending_txs=1))
    assert any(isinstance(a, BuildProposal) for a in actions)
    assert not any(isinstance(a, BuildProposal) for a in n1.step(Tick(2001, pending_txs=1)))
    n1.step(Committed(0, GENESIS))
    assert any(isinstance(a, BuildProposal) for a in n1.step(Tick(2002, pending_txs=1)))


def test_a_stale_proposal_is_ignored() -> None:
    c = elected()
    n1 = c.engine("n1")
    last = n1.log.last_index
    assert n1.step(ProposalBuilt(block(5, GENESIS, 1))) == []  # wrong height
    assert n1.step(ProposalBuilt(block(1, GENESIS, 7))) == []  # wrong term
    assert n1.log.last_index == last


# ---- restart edge cases --------------------------------------------------------------------
def test_restart_after_commit_but_before_compaction_knows_the_block_is_committed() -> None:
    c = elected()
    c.nodes["n1"].pool = 1
    c.tick("n1", 10)
    c.stabilize()
    n2 = c.nodes["n2"]
    assert n2.height == 1
    # Put back the entry keys the compaction removed, as if the crash came before it.
    b1 = n2.ledger[0]
    persisted = dict(n2.persisted)
    persisted.pop(SNAP_KEY)
    persisted[entry_key(1)] = encode(Entry(1))
    persisted[entry_key(2)] = encode(Entry(1, b1))
    engine = RaftEngine.from_setup(setup("n2", persisted=persisted, height=1, head=b1.hash))
    assert engine.commit_index == 2
    assert engine.status()["height"] == 1
    # A Committed for the same height changes nothing and emits no second CommitBlock.
    assert not any(isinstance(a, CommitBlock) for a in engine.step(Committed(1, b1.hash)))


def test_leftover_keys_are_deleted_on_the_first_step() -> None:
    persisted = {
        SNAP_KEY: encode([2, 1, 1, GENESIS]),
        entry_key(1): encode(Entry(1)),  # at or before the snapshot
        entry_key(3): encode(Entry(1)),
        entry_key(5): encode(Entry(1)),  # after a gap
    }
    engine = RaftEngine.from_setup(setup(persisted=persisted, height=1))
    assert engine.log.last_index == 3
    actions = engine.step(Tick(0))
    deleted = [a.key for a in actions if isinstance(a, Persist) and a.value is None]
    assert deleted == [entry_key(1), entry_key(5)]
    assert not any(isinstance(a, Persist) for a in engine.step(Tick(1)))


def test_corrupt_persisted_state_is_a_typed_error() -> None:
    with pytest.raises(RaftStateError):
        RaftEngine.from_setup(setup(persisted={HARD_KEY: b"\xc1"}))
    with pytest.raises(RaftStateError):
        RaftEngine.from_setup(setup(persisted={entry_key(1): b"junk"}))


# ---- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"heartbeat_ms": 0},
        {"election_timeout_min_ms": 50, "heartbeat_ms": 50},
        {"election_timeout_max_ms": 500},
        {"pipeline": 0},
        {"max_entries_per_msg": 0},
        {"retain_entries": -1},
        {"heartbeat_ms": "fast"},
    ],
)
def test_bad_params_are_refused(params: dict[str, int | str]) -> None:
    with pytest.raises(RaftConfigError):
        RaftEngine.from_setup(setup(params=params))


def test_params_have_documented_defaults_and_ignore_other_keys() -> None:
    p = RaftParams.from_mapping({"tick_ms": 5, "pipeline": 2})
    assert (p.heartbeat_ms, p.election_timeout_min_ms, p.election_timeout_max_ms) == (50, 500, 1000)
    assert (p.pipeline, p.max_entries_per_msg) == (2, 64)


def test_commit_quorum_is_at_least_a_majority_and_at_most_everyone() -> None:
    assert RaftEngine.from_setup(setup(commit_quorum=1)).commit_quorum == 2
    assert RaftEngine.from_setup(setup(commit_quorum=3)).commit_quorum == 3
    with pytest.raises(RaftConfigError):
        RaftEngine.from_setup(setup(commit_quorum=4))
    with pytest.raises(RaftConfigError):
        RaftEngine.from_setup(setup(peers=("n1", "n1")))


def test_reconfigure_changes_one_validator_at_a_time() -> None:
    engine = RaftEngine.from_setup(setup())
    with pytest.raises(RaftConfigError):
        engine.reconfigure(tuple(peer_of(p) for p in ("n1", "n2", "n3", "n4", "n5")))
    with pytest.raises(RaftConfigError):
        engine.reconfigure(tuple(peer_of(p) for p in ("n1", "n4", "n5")))
    assert engine.reconfigure(tuple(peer_of(p) for p in ("n1", "n2", "n3", "n4"))) == []
    assert engine.commit_quorum == 3
    assert engine.reconfigure(tuple(peer_of(p) for p in ("n1", "n2", "n4"))) == []
    assert engine.commit_quorum == 2


def test_a_stricter_commit_quorum_carries_over_a_reconfiguration() -> None:
    engine = RaftEngine.from_setup(setup(peers=("n1", "n2", "n3", "n4"), commit_quorum=4))
    engine.reconfigure(tuple(peer_of(p) for p in ("n1", "n2", "n3", "n4", "n5")))
    assert engine.commit_quorum == 4  # majority 3, plus the one extra the policy asked
    engine.reconfigure(tuple(peer_of(p) for p in ("n1", "n2", "n3", "n4", "n5")), commit_quorum=5)
    assert engine.commit_quorum == 5


def test_a_removed_leader_steps_down_and_stays_quiet() -> None:
    c = elected()
    n1 = c.engine("n1")
    n1.reconfigure(tuple(peer_of(p) for p in ("n2", "n3")))
    assert n1.role == FOLLOWER and n1.leader is None
    assert n1.step(Tick(10_000)) == []  # never campaigns
    assert n1.step(PeerMessage("n2", RequestVote(5, 99, 9))) == []  # never votes


# ---- status --------------------------------------------------------------------------------
def test_status_reports_the_documented_fields() -> None:
    c = elected()
    s = c.engine("n1").status()
    assert {"engine", "role", "term", "leader", "height", "log_len", "dropped_msgs"} <= set(s)
    assert (s["engine"], s["role"], s["term"], s["leader"], s["height"]) == ("raft", "leader", 1, "n1", 0)


# ---- batching, pipelining, joining with a synced ledger -----------------------------------------
@pytest.mark.parametrize(("max_bytes", "blocks_per_msg"), [(1000, 1), (1300, 2), (100, 1)])
def test_catch_up_batches_are_bounded_by_transaction_bytes(max_bytes: int, blocks_per_msg: int) -> None:
    c = elected(max_bytes_per_msg=max_bytes)
    c.tx_bytes = 600
    c.crash("n3")
    for _ in range(4):
        c.nodes["n1"].pool = 1
        c.tick("n1", 10)
        c.stabilize()
    c.restart("n3")
    c.tick("n1", 50)
    sizes: list[int] = []
    for _ in range(20):
        for _sender, dest, m in c.queue:
            if dest == "n3" and isinstance(m, AppendEntries) and m.entries:
                sizes.append(sum(1 for e in m.entries if e.block is not None))
        if not c.deliver():
            break
    assert sizes and max(sizes) == blocks_per_msg  # with 100 bytes, one entry still goes
    assert c.nodes["n3"].height == 4


def test_pipeline_two_builds_on_an_uncommitted_block() -> None:
    c = elected(pipeline=2)
    n1 = c.engine("n1")
    first = [a for a in n1.step(Tick(5000, pending_txs=1)) if isinstance(a, BuildProposal)]
    assert first == [BuildProposal(1, GENESIS, encode_term(1))]
    b1 = block(1, GENESIS, 1)
    n1.step(ProposalBuilt(b1))
    second = [a for a in n1.step(Tick(5001, pending_txs=1)) if isinstance(a, BuildProposal)]
    assert second == [BuildProposal(2, b1.hash, encode_term(1))]
    n1.step(ProposalBuilt(block(2, b1.hash, 1)))
    assert not any(isinstance(a, BuildProposal) for a in n1.step(Tick(5002, pending_txs=1)))


def test_a_new_member_that_synced_its_ledger_first_joins_without_its_raft_history() -> None:
    c = elected()
    c.nodes["n1"].pending_config = ("n1", "n2", "n3", "n4")
    for _ in range(3):
        c.nodes["n1"].pool = 1
        c.tick("n1", 10)
        c.stabilize()
    assert c.nodes["n1"].height == 3
    # n4 fetched the chain by block sync before its engine ever ran: no persisted state.
    c.nodes["n4"] = Node("n4", (), ledger=list(c.nodes["n1"].ledger))
    c.start("n4")
    n4 = c.engine("n4")
    assert not n4.log.anchored and n4.status()["height"] == 3
    c.tick("n1", 50)
    c.stabilize()
    c.nodes["n1"].pool = 1
    c.tick("n1", 10)
    c.stabilize()
    assert [c.nodes[n].height for n in ("n1", "n2", "n3", "n4")] == [4, 4, 4, 4]
    assert n4.log.anchored and n4.commit_index == c.engine("n1").commit_index
