"""Raft: crash-fault-tolerant ordering (f crashed of 2f+1), after Ongaro & Ousterhout.

Leader election with randomized timeouts (§5.2), pre-vote and check-quorum (thesis §9.6,
§6.2), log replication with the log matching check (§5.3), commit only by counting
current-term entries (§5.4.2), single-server membership changes (thesis §4.1) and log
compaction into the ledger (§7).

Blockchain specifics:
- Log entries are blocks, plus one no-op per leader term (§8), which is why a Raft index
  and a block height differ.
- A block commits when Raft commits it *and* `commit_quorum` validators signed its hash;
  followers sign every block they append. The certificate travels to followers with the
  commit index, and nobody (leader or follower) emits CommitBlock without one, so a
  partitioned old leader can neither commit by Raft rules nor certify a block alone.
- The ledger is the snapshot: once a block is durable (Committed) it leaves the persisted
  log. A follower that needs compacted entries gets InstallSnapshot and catches up by the
  driver's block sync (status()["sync_height"] tells the driver how far).
- Membership follows the committed chain: after committing a block that changed the
  validator set, the driver calls `reconfigure(peers)` (one server added or removed).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consortia.consensus.interface import (
    Action,
    BlockSigner,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    Peer,
    PeerMessage,
    Persist,
    ProposalBuilt,
    Send,
    Tick,
)
from consortia.consensus.raft_log import (
    HARD_KEY,
    SNAP_KEY,
    HardState,
    RaftError,
    RaftStateError,
    SnapshotMeta,
    entry_key,
    load_state,
)
from consortia.consensus.raft_messages import (
    ENTRIES_PER_MSG_MAX,
    MESSAGE_TYPES,
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
from consortia.types import Block, BlockSignature, CommitCertificate, commit_signing_bytes, encode

__all__ = [
    "FOLLOWER",
    "LEADER",
    "MESSAGE_TYPES",
    "PRECANDIDATE",
    "CANDIDATE",
    "RaftConfigError",
    "RaftEngine",
    "RaftError",
    "RaftParams",
    "RaftStateError",
]

FOLLOWER = "follower"
PRECANDIDATE = "precandidate"
CANDIDATE = "candidate"
LEADER = "leader"


class RaftConfigError(RaftError):
    """Bad engine parameters or a membership change Raft cannot make safely."""


@dataclass(frozen=True)
class RaftParams:
    """Timing and batching, read from the channel's consensus params (unknown keys ignored)."""

    heartbeat_ms: int = 50
    election_timeout_min_ms: int = 500
    election_timeout_max_ms: int = 1000  # exclusive
    pipeline: int = 1  # blocks built ahead of the last committed (delivered) one
    max_entries_per_msg: int = 64
    max_bytes_per_msg: int = 8 * 1024 * 1024  # of transactions; one entry always goes
    retain_entries: int = 64  # compacted entries kept in memory for lagging followers

    @classmethod
    def from_mapping(cls, params: Mapping[str, int | str]) -> RaftParams:
        """Raises RaftConfigError for a non-integer or out-of-range value."""
        values: dict[str, int] = {}
        for name in cls.__dataclass_fields__:
            if name in params:
                value = params[name]
                if not isinstance(value, int) or isinstance(value, bool):
                    raise RaftConfigError(f"raft param {name} must be an integer")
                values[name] = value
        p = cls(**values)
        p.validate()
        return p

    def validate(self) -> None:
        """Raises RaftConfigError unless every limit is usable."""
        if self.heartbeat_ms < 1:
            raise RaftConfigError("heartbeat_ms must be >= 1")
        if self.election_timeout_min_ms <= self.heartbeat_ms:
            raise RaftConfigError("election_timeout_min_ms must exceed heartbeat_ms")
        if self.election_timeout_max_ms <= self.election_timeout_min_ms:
            raise RaftConfigError("election_timeout_max_ms must exceed election_timeout_min_ms")
        if self.pipeline < 1:
            raise RaftConfigError("pipeline must be >= 1")
        if not 1 <= self.max_entries_per_msg <= ENTRIES_PER_MSG_MAX:
            raise RaftConfigError(f"max_entries_per_msg must be 1..{ENTRIES_PER_MSG_MAX}")
        if self.max_bytes_per_msg < 1:
            raise RaftConfigError("max_bytes_per_msg must be >= 1")
        if self.retain_entries < 0:
            raise RaftConfigError("retain_entries must be >= 0")


@dataclass
class Progress:
    """The leader's view of one follower (Figure 2's nextIndex/matchIndex, and more)."""

    next: int
    match: int = 0
    sent_upto: int = 0  # highest index sent this term: a follower cannot confirm more
    committed_height: int = 0  # its last reported committed height: certificates go above it
    active: bool = False  # heard from since the last check-quorum
    # Probing (etcd's terms): one batch at a time until a success says where the logs
    # match; then replicating: `next` moves on optimistically as batches leave.
    replicating: bool = False
    probe_sent: bool = False  # probing and a batch is out: wait for its reply or a heartbeat


class RaftEngine:
    """A Raft replica. See the module docstring; `step` never raises on peer input."""

    name = "raft"

    def __init__(self, setup: EngineSetup) -> None:
        """Raises RaftConfigError for bad params or validators, RaftStateError for corrupt state."""
        self.params = RaftParams.from_mapping(setup.params)
        self.node_id = setup.node_id
        self.signer: BlockSigner = setup.signer
        self._rng = random.Random(setup.seed)
        self._peers: dict[str, Peer] = {}
        self._signers: dict[bytes, Peer] = {}  # cert DER -> validator, current and previous set
        self._member = False
        self._majority = 1
        self.commit_quorum = 1
        self._set_peers(setup.peers, setup.commit_quorum)

        hard, log, stale = load_state(setup.persisted, setup.height, setup.head)
        self.term, self.vote = hard.term, hard.vote
        self.log = log
        self._stale_keys = stale
        self.role = FOLLOWER
        self.leader: str | None = None
        self.commit_index = log.snap.index
        self.delivered_height, self.delivered_hash = setup.height, setup.head
        self.emitted_height, self.emitted_hash = setup.height, setup.head
        head_index = log.index_of_height(setup.height)
        if head_index is not None and _block_hash(log.entry(head_index)) == setup.head:
            self.commit_index = max(self.commit_index, head_index)  # the ledger holds it
        self._sync_target: SnapshotMeta | None = log.snap if log.snap.height > setup.height else None

        self._certs: dict[int, CommitCertificate] = {}  # height -> certificate (in-memory blocks)
        self._sigs: dict[bytes, dict[str, BlockSignature]] = {}  # leader: block hash -> signer -> sig
        self._my_sigs: dict[int, tuple[bytes, bytes]] = {}  # height -> (hash, own signature)
        self._progress: dict[str, Progress] = {}
        self._votes: dict[str, bool] = {}
        self._building = False
        self._dropped = 0
        self._started = False
        self._now = 0
        self._election_due = 0
        self._heartbeat_due = 0
        self._quorum_check_due = 0
        self._leader_contact = 0
        self._out: list[Action] = []

    @classmethod
    def from_setup(cls, setup: EngineSetup) -> RaftEngine:
        return cls(setup)

    # ---- the interface -----------------------------------------------------------------
    def step(self, event: Event) -> list[Action]:
        if self._stale_keys:
            self._out.extend(Persist(k, None) for k in self._stale_keys)
            self._stale_keys = []
        if isinstance(event, Tick):
            self._on_tick(event)
        elif isinstance(event, PeerMessage):
            self._on_peer_message(event)
        elif isinstance(event, ProposalBuilt):
            self._on_proposal_built(event.block)
        elif isinstance(event, Committed):
            self._on_committed(event)
        # ProposalExecuted: Raft never asks for speculative execution.
        out, self._out = self._out, []
        return out

    def status(self) -> dict[str, int | str]:
        return {
            "engine": self.name,
            "role": self.role,
            "term": self.term,
            "leader": self.leader or "",
            "height": self.delivered_height,
            "log_len": self.log.persisted_len,
            "dropped_msgs": self._dropped,
            "commit_index": self.commit_index,
            "last_index": self.log.last_index,
            "sync_height": self.sync_height(),
        }

    def sync_height(self) -> int:
        """The height block sync should fetch up to; 0 when the log suffices.

        Non-zero when the leader compacted entries this node lacks (InstallSnapshot), or
        when blocks are committed but their certificates are nowhere to be had from the
        log (the leader forgot them, or this node leads and its followers compacted them).
        The driver fetches certified blocks from peers and reports each with Committed.
        """
        want = self._sync_target.height if self._sync_target is not None else 0
        committed = self.log.block_at_or_before(self.commit_index)
        if committed is not None:
            want = max(want, committed[0])
        return want if want > self.emitted_height else 0

    def reconfigure(self, peers: tuple[Peer, ...], commit_quorum: int | None = None) -> list[Action]:
        """Adopt the validator set of a committed config block (thesis §4.1, one server at a time).

        `commit_quorum` defaults to a majority of the new set plus however many signatures
        the old quorum asked above its majority (a stricter block policy carries over).
        A leader that is no longer a member steps down. Raises RaftConfigError if more than
        one validator is added or removed, or the set or quorum is unusable.
        """
        old = set(self._peers)
        new = {p.name for p in peers}
        if len(new - old) + len(old - new) > 1:
            raise RaftConfigError("a membership change adds or removes one validator at a time")
        added = sorted(new - old)
        was_member = self._member
        self._set_peers(peers, commit_quorum)
        if self._member and not was_member:
            self._reset_election_timer()  # a new member first listens for the leader
        if self.role == LEADER:
            if not self._member:
                self._become_follower(self.term, None)
            else:
                for name in list(self._progress):
                    if name not in self._peers:
                        del self._progress[name]
                for name in added:
                    if name != self.node_id:
                        self._progress[name] = Progress(next=self.log.last_index + 1)
                        self._send_append(name, heartbeat=True)
                self._advance_commit()
        elif self.role in (PRECANDIDATE, CANDIDATE):
            if self._member:
                self._votes = {n: v for n, v in self._votes.items() if n in self._peers}
            else:
                self._become_follower(self.term, None)
        out, self._out = self._out, []
        return out

    # ---- membership --------------------------------------------------------------------
    def _set_peers(self, peers: Iterable[Peer], commit_quorum: int | None) -> None:
        ordered = sorted(peers, key=lambda p: p.name)
        if not ordered:
            raise RaftConfigError("the validator set is empty")
        if len({p.name for p in ordered}) != len(ordered):
            raise RaftConfigError("validator names must be unique")
        majority = len(ordered) // 2 + 1
        if commit_quorum is None:
            extra = max(self.commit_quorum - self._majority, 0) if self._peers else 0
            quorum = min(majority + extra, len(ordered))
        else:
            quorum = max(commit_quorum, majority)  # a certificate never needs less than Raft
        if quorum > len(ordered):
            raise RaftConfigError(f"commit quorum {quorum} exceeds the {len(ordered)} validators")
        previous = list(self._peers.values())
        self._peers = {p.name: p for p in ordered}
        self._signers = {p.cert_der: p for p in previous + ordered}
        self._member = self.node_id in self._peers
        self._majority = majority
        self.commit_quorum = quorum

    def _others(self) -> list[str]:
        return [name for name in self._peers if name != self.node_id]

    # ---- time --------------------------------------------------------------------------
    def _on_tick(self, tick: Tick) -> None:
        self._now = max(self._now, tick.now_ms)
        if not self._started:
            self._started = True
            self._reset_election_timer()
        if self.role == LEADER:
            if self._now >= self._quorum_check_due and not self._check_quorum():
                return
            if self._now >= self._heartbeat_due:
                self._heartbeat_due = self._now + self.params.heartbeat_ms
                for name in self._others():
                    self._send_append(name, heartbeat=True)
            self._maybe_build(tick.pending_txs)
        elif self._member and self._now >= self._election_due:
            self._start_pre_vote()

    def _reset_election_timer(self) -> None:
        p = self.params
        self._election_due = self._now + self._rng.randrange(
            p.election_timeout_min_ms, p.election_timeout_max_ms
        )

    def _in_lease(self) -> bool:
        """True while a leader is known to be alive: vote requests are then ignored (§4.2.3)."""
        if self.role == LEADER:
            return True
        return (
            self.leader is not None and self._now - self._leader_contact < self.params.election_timeout_min_ms
        )

    def _check_quorum(self) -> bool:
        """A leader that has not heard from a majority for an election timeout steps down."""
        active = int(self._member) + sum(1 for p in self._progress.values() if p.active)
        if active < self._majority:
            self._become_follower(self.term, None)
            return False
        for p in self._progress.values():
            p.active = False
        self._quorum_check_due = self._now + self.params.election_timeout_min_ms
        return True

    # ---- roles -------------------------------------------------------------------------
    def _become_follower(self, term: int, leader: str | None, persist: bool = True) -> None:
        """With persist=False the caller persists the new term itself, before any reply."""
        if term > self.term:
            self.term, self.vote = term, ""
            if persist:
                self._persist_hard()
        self.role = FOLLOWER
        self.leader = leader
        self._votes = {}
        self._progress = {}
        self._sigs = {}
        self._building = False
        self._leader_contact = self._now
        self._reset_election_timer()

    def _start_pre_vote(self) -> None:
        self.role = PRECANDIDATE
        self.leader = None
        self._votes = {self.node_id: True}
        self._reset_election_timer()
        if self._tally() >= self._majority:
            self._campaign()
            return
        vote = RequestVote(self.term + 1, self.log.last_index, self.log.last_term, pre_vote=True)
        for name in self._others():
            self._send(name, vote)

    def _campaign(self) -> None:
        self.term += 1
        self.vote = self.node_id
        self._persist_hard()
        self.role = CANDIDATE
        self._votes = {self.node_id: True}
        self._reset_election_timer()
        if self._tally() >= self._majority:
            self._become_leader()
            return
        vote = RequestVote(self.term, self.log.last_index, self.log.last_term)
        for name in self._others():
            self._send(name, vote)

    def _tally(self) -> int:
        return sum(1 for name, granted in self._votes.items() if granted and name in self._peers)

    def _become_leader(self) -> None:
        self.role = LEADER
        self.leader = self.node_id
        self._votes = {}
        self._sigs = {}
        self._building = False
        # Until a follower says otherwise, assume it committed what we did: no certificates.
        self._progress = {
            name: Progress(next=self.log.last_index + 1, committed_height=self.emitted_height)
            for name in self._others()
        }
        self._append_own(Entry(self.term, None))  # §8: commits the entries of earlier terms
        self._heartbeat_due = self._now + self.params.heartbeat_ms
        self._quorum_check_due = self._now + self.params.election_timeout_min_ms
        for name in self._others():
            self._send_append(name, heartbeat=True)
        self._advance_commit()

    # ---- proposals (leader) ------------------------------------------------------------
    def _maybe_build(self, pending_txs: int) -> None:
        if self._building or pending_txs <= 0:
            return
        last = self.log.last_block()
        if last is None or last[0] < self.delivered_height:
            return
        if last[0] - self.delivered_height >= self.params.pipeline:
            return
        self._building = True
        self._out.append(BuildProposal(last[0] + 1, last[1], encode_term(self.term)))

    def _on_proposal_built(self, block: Block) -> None:
        self._building = False
        if self.role != LEADER:
            return
        last = self.log.last_block()
        h = block.header
        if (
            last is None
            or h.height != last[0] + 1
            or h.parent_hash != last[1]
            or h.engine != encode_term(self.term)
        ):
            return  # stale: built for an earlier term or tip; the next tick builds again
        self._append_own(Entry(self.term, block))
        for name in self._others():
            self._send_append(name, heartbeat=False)
        self._advance_commit()

    def _append_own(self, entry: Entry) -> None:
        self.log.append([entry])
        self._out.append(Persist(entry_key(self.log.last_index), encode(entry)))

    # ---- replication (leader) ----------------------------------------------------------
    def _send_append(self, name: str, heartbeat: bool) -> None:
        """Send the follower what it lacks from `next`; a snapshot (heartbeats only) if compacted."""
        prog = self._progress[name]
        if not prog.replicating and prog.probe_sent and not heartbeat:
            return
        prev = prog.next - 1
        if prev < self.log.base.index:
            prog.replicating = False
            if heartbeat:
                self._send_snapshot(name, prog)
            return
        prev_term = self.log.term_at(prev)
        if prev_term is None:  # next beyond our log: only after a bogus response
            prog.next = self.log.last_index + 1
            return
        entries = self._batch(prev + 1)
        hi = prev + len(entries)
        certs, gap = self._certs_for(prog, max(hi, prog.match))
        if gap and heartbeat and self.log.snap.height > prog.committed_height:
            self._send_snapshot(name, prog)  # it lacks certificates we no longer hold: block sync
        msg = AppendEntries(
            self.term, prev, prev_term, entries, self.commit_index, self.emitted_height + 1, certs
        )
        prog.sent_upto = max(prog.sent_upto, hi)
        if prog.replicating:
            prog.next = hi + 1
        else:
            prog.probe_sent = True
        self._send(name, msg)

    def _batch(self, lo: int) -> list[Entry]:
        """Entries from `lo`, bounded by count and transaction bytes (at least one)."""
        entries = self.log.slice(lo, lo + self.params.max_entries_per_msg - 1)
        budget = self.params.max_bytes_per_msg
        for n, e in enumerate(entries):
            budget -= _entry_bytes(e)
            if budget < 0 and n > 0:
                return entries[:n]
        return entries

    def _send_snapshot(self, name: str, prog: Progress) -> None:
        s = self.log.snap
        prog.sent_upto = max(prog.sent_upto, s.index)
        self._send(name, InstallSnapshot(self.term, s.index, s.term, s.height, s.block_hash))

    def _certs_for(self, prog: Progress, upto_index: int) -> tuple[list[CommitCertificate], bool]:
        """Certificates above the follower's committed height for blocks it holds or is sent."""
        certs: list[CommitCertificate] = []
        h = prog.committed_height + 1
        while h <= self.emitted_height and len(certs) < self.params.max_entries_per_msg:
            cert = self._certs.get(h)
            if cert is None:
                return certs, True  # forgotten, or never ours (we got it by block sync)
            index = self.log.index_of_height(h)
            if index is None or index > upto_index:
                break
            certs.append(cert)
            h += 1
        return certs, False

    def _on_append_response(self, sender: str, m: AppendEntriesResponse) -> None:
        if m.term > self.term:
            self._become_follower(m.term, None)
            return
        if m.term < self.term or self.role != LEADER:
            return  # late reply from an earlier term
        prog = self._progress.get(sender)
        if prog is None:
            return
        prog.active = True
        prog.probe_sent = False
        prog.committed_height = min(m.committed_height, self.emitted_height)
        if m.success:
            if m.index > prog.sent_upto:
                self._dropped += 1  # confirms entries never sent to it
                return
            advanced = m.index > prog.match
            prog.match = max(prog.match, m.index)
            prog.next = max(prog.next, m.index + 1)
            prog.replicating = True
            self._record_signatures(sender, m.signatures)
            self._advance_commit()
            if advanced and prog.next <= self.log.last_index:
                self._send_append(sender, heartbeat=False)
            return
        stale = m.index <= prog.match if prog.replicating else m.index != prog.next - 1
        if stale or m.index == 0:
            return  # the rejection of an older message
        hint = min(m.hint, m.index - 1)
        prog.match = min(prog.match, hint)  # it lost entries it had confirmed: count it no more
        prog.next = max(prog.match + 1, hint + 1)
        prog.replicating = False
        self._send_append(sender, heartbeat=False)

    def _record_signatures(self, sender: str, acks: list[BlockAck]) -> None:
        peer = self._peers[sender]
        for ack in acks[: self.params.max_entries_per_msg]:
            if ack.height <= self.emitted_height:
                continue
            index = self.log.index_of_height(ack.height)
            if index is None:
                continue
            block_hash = _block_hash(self.log.entry(index))
            got = self._sigs.setdefault(block_hash, {})
            if sender in got:
                continue
            if peer.verify(commit_signing_bytes(block_hash), ack.signature):
                got[sender] = BlockSignature(peer.cert_der, ack.signature)
            else:
                self._dropped += 1

    def _advance_commit(self) -> None:
        """§5.4.2: commit the highest current-term index a majority holds; then emit blocks."""
        before = self.commit_index
        for n in range(self.log.last_index, self.commit_index, -1):
            if self.log.term_at(n) != self.term:
                break  # terms only fall going back: no current-term entry below
            have = int(self._member) + sum(1 for p in self._progress.values() if p.match >= n)
            if have >= self._majority:
                self.commit_index = n
                break
        emitted = self._emit()
        if self.commit_index > before or emitted:
            for name in self._others():
                self._send_append(name, heartbeat=False)

    def _make_cert(self, height: int, block_hash: bytes) -> CommitCertificate | None:
        got = dict(self._sigs.get(block_hash, {}))
        if self._member:
            got[self.node_id] = self._own_signature(height, block_hash)
        sigs = [got[name] for name in self._peers if name in got]
        if len(sigs) < self.commit_quorum:
            return None
        return CommitCertificate(height, block_hash, sigs)

    def _own_signature(self, height: int, block_hash: bytes) -> BlockSignature:
        cached = self._my_sigs.get(height)
        if cached is None or cached[0] != block_hash:
            cached = (block_hash, self.signer.sign_block(block_hash).signature)
            self._my_sigs[height] = cached
        return BlockSignature(self.signer.cert_der, cached[1])

    # ---- commit --------------------------------------------------------------------------
    def _emit(self) -> bool:
        """CommitBlock for each committed block in height order that has a certificate."""
        emitted = False
        while True:
            height = self.emitted_height + 1
            index = self.log.index_of_height(height)
            if index is None or index > self.commit_index:
                break
            block = self.log.entry(index).block
            if block is None or block.header.parent_hash != self.emitted_hash:
                break
            cert = self._certs.get(height)
            if cert is None or cert.block_hash != block.hash:
                cert = self._make_cert(height, block.hash) if self.role == LEADER else None
                if cert is None:
                    break
                self._certs[height] = cert
            self._out.append(CommitBlock(block, cert))
            self._sigs.pop(block.hash, None)
            self.emitted_height, self.emitted_hash = height, block.hash
            emitted = True
        return emitted

    def _on_committed(self, ev: Committed) -> None:
        self._building = False  # also the driver's answer to a build it could not make
        if ev.height <= self.delivered_height:
            return
        self.delivered_height, self.delivered_hash = ev.height, ev.block_hash
        if ev.height > self.emitted_height:  # block sync moved the ledger past us
            self.emitted_height, self.emitted_hash = ev.height, ev.block_hash
        index = self.log.index_of_height(ev.height)
        if index is not None and _block_hash(self.log.entry(index)) == ev.block_hash:
            # The ledger holds this block, and a block sits at one index only: committed.
            self.commit_index = max(self.commit_index, index)
            if index > self.log.snap.index:
                self._compact(index)
        target = self._sync_target
        if target is not None and ev.height >= target.height:
            self._install(target)
        for h in [h for h in self._my_sigs if h <= ev.height]:
            del self._my_sigs[h]
        self._emit()

    def _compact(self, index: int) -> None:
        removed = self.log.compact(index)
        self._persist_snap(removed)
        self.log.trim(self.params.retain_entries)
        for h in [h for h in self._certs if h <= self.log.base.height]:
            del self._certs[h]

    def _install(self, target: SnapshotMeta) -> None:
        """Make `target` the snapshot: the ledger already holds its block (§7)."""
        if self._sync_target is not None and self._sync_target.index <= target.index:
            self._sync_target = None
        if target.index <= self.log.snap.index:
            return
        if target.index <= self.log.last_index and self.log.term_at(target.index) == target.term:
            removed = self.log.replace_snapshot(target)
        else:
            removed = self.log.reset(target)
        self._persist_snap(removed)
        self.commit_index = max(self.commit_index, target.index)
        for h in [h for h in self._certs if h <= target.height]:
            del self._certs[h]

    # ---- messages ------------------------------------------------------------------------
    def _on_peer_message(self, pm: PeerMessage) -> None:
        sender = pm.sender
        if not isinstance(sender, str) or sender == self.node_id or sender not in self._peers:
            self._dropped += 1
            return
        m = check_message(pm.message)
        if m is None:
            self._dropped += 1
        elif isinstance(m, AppendEntries):
            self._on_append(sender, m)
        elif isinstance(m, AppendEntriesResponse):
            self._on_append_response(sender, m)
        elif isinstance(m, RequestVote):
            self._on_request_vote(sender, m)
        elif isinstance(m, RequestVoteResponse):
            self._on_vote_response(sender, m)
        else:
            self._on_snapshot(sender, m)

    def _accept_leader(self, sender: str, term: int) -> bool:
        """Follow `sender` as the leader of `term` (>= ours); False for a second leader."""
        if term > self.term:
            self._become_follower(term, sender)
            return True
        if self.role == LEADER or (self.leader is not None and self.leader != sender):
            self._dropped += 1  # two leaders in one term: not an honest peer
            return False
        if self.role != FOLLOWER or self.leader is None:
            self._become_follower(term, sender)
        self._leader_contact = self._now
        self._reset_election_timer()
        return True

    def _on_append(self, sender: str, m: AppendEntries) -> None:
        if m.term < self.term:
            self._send(sender, self._reject(m.prev_index, self.log.last_index))
            return
        if not self._accept_leader(sender, m.term):
            return
        prev, prev_term, entries = m.prev_index, m.prev_term, m.entries
        if prev < self.commit_index:
            # Our committed prefix matches every leader's (§5.4): skip to its end.
            skip = self.commit_index - prev
            if len(entries) <= skip:
                self._reply_success(sender, prev + len(entries), m)
                return
            entries = entries[skip:]
            prev = self.commit_index
            prev_term = self.log.term_at(prev) or 0
        if prev > self.log.last_index:
            self._send(sender, self._reject(m.prev_index, self.log.last_index))
            return
        if self.log.term_at(prev) != prev_term:
            self._send(sender, self._reject(m.prev_index, self._conflict_hint(prev)))
            return
        if not _entries_chain(prev_term, m.term, entries, self.log.block_at_or_before(prev)):
            self._dropped += 1
            return
        self._merge(prev, entries)
        match = prev + len(entries)
        self.commit_index = max(self.commit_index, min(m.commit_index, match))
        self._accept_certs(m.certs)
        self._emit()
        self._reply_success(sender, match, m)

    def _merge(self, prev: int, entries: list[Entry]) -> None:
        """Append what is new, truncating a conflicting suffix first (§5.3); persist both."""
        k, i = 0, prev + 1
        while k < len(entries) and i <= self.log.last_index and self.log.term_at(i) == entries[k].term:
            k, i = k + 1, i + 1
        new = entries[k:]
        if not new:
            return
        if i <= self.log.last_index:
            # Deleted from the end so an interrupted truncation never leaves a gap.
            for gone in reversed(self.log.truncate_after(i - 1)):
                self._out.append(Persist(entry_key(gone), None))
        for e in new:
            self.log.append([e])
            self._out.append(Persist(entry_key(self.log.last_index), encode(e)))

    def _conflict_hint(self, prev: int) -> int:
        """The index before the first entry of the conflicting term (§5.3's optimisation)."""
        term = self.log.term_at(prev)
        i = prev
        while i - 1 > self.commit_index and self.log.term_at(i - 1) == term:
            i -= 1
        return i - 1

    def _accept_certs(self, certs: list[CommitCertificate]) -> None:
        for cert in certs[: self.params.max_entries_per_msg]:
            if cert.height <= self.emitted_height:
                continue
            have = self._certs.get(cert.height)
            if have is not None and have.block_hash == cert.block_hash:
                continue
            index = self.log.index_of_height(cert.height)
            if index is None or _block_hash(self.log.entry(index)) != cert.block_hash:
                continue  # not (yet) our block at that height
            if self._cert_valid(cert):
                self._certs[cert.height] = cert
            else:
                self._dropped += 1

    def _cert_valid(self, cert: CommitCertificate) -> bool:
        message = commit_signing_bytes(cert.block_hash)
        seen: set[str] = set()
        for sig in cert.signatures:
            peer = self._signers.get(sig.signer)
            if peer is None or peer.name in seen:
                continue
            if peer.verify(message, sig.signature):
                seen.add(peer.name)
                if len(seen) >= self.commit_quorum:
                    return True
        return False

    def _accept(self, index: int) -> AppendEntriesResponse:
        return AppendEntriesResponse(self.term, True, index, index, self.emitted_height, [])

    def _reject(self, index: int, hint: int) -> AppendEntriesResponse:
        return AppendEntriesResponse(self.term, False, index, hint, self.emitted_height, [])

    def _reply_success(self, sender: str, match: int, m: AppendEntries) -> None:
        acks: list[BlockAck] = []
        h = max(m.sig_from, self.log.base.height + 1)
        while len(acks) < self.params.max_entries_per_msg:
            index = self.log.index_of_height(h)
            if index is None or index > match:
                break
            acks.append(BlockAck(h, self._own_signature(h, _block_hash(self.log.entry(index))).signature))
            h += 1
        self._send(sender, AppendEntriesResponse(self.term, True, match, match, self.emitted_height, acks))

    def _on_snapshot(self, sender: str, m: InstallSnapshot) -> None:
        if m.term < self.term:
            self._send(sender, self._reject(m.index, self.log.last_index))
            return
        if not self._accept_leader(sender, m.term):
            return
        target = SnapshotMeta(m.index, m.snap_term, m.height, m.block_hash)
        if m.index <= self.commit_index or self.log.term_at(m.index) == m.snap_term:
            self.commit_index = max(self.commit_index, min(m.index, self.log.last_index))
            if m.height > self.delivered_height:
                self._sync_target = target  # the log has it; the ledger must catch up
            self._emit()
            self._send(sender, self._accept(m.index))
            return
        if m.height <= self.delivered_height:
            self._install(target)
            self._send(sender, self._accept(m.index))
            return
        self._sync_target = target  # installed once block sync delivers `height`
        self._send(sender, self._reject(m.index, self.log.last_index))

    def _on_request_vote(self, sender: str, m: RequestVote) -> None:
        if not self._member:
            return
        up_to_date = (m.last_term, m.last_index) >= (self.log.last_term, self.log.last_index)
        if m.pre_vote:
            # §9.6: answer as if the election were held, but change nothing.
            grant = m.term > self.term and up_to_date and not self._in_lease()
            self._send(sender, RequestVoteResponse(m.term if grant else self.term, grant, pre_vote=True))
            return
        if m.term < self.term:
            self._send(sender, RequestVoteResponse(self.term, False))
            return
        newer = m.term > self.term
        if newer:
            if self._in_lease():
                return  # a live leader exists: a disruptive candidate is ignored (§4.2.3)
            self._become_follower(m.term, None, persist=False)
        grant = self.vote in ("", sender) and up_to_date
        if grant:
            self.vote = sender
            self._reset_election_timer()
        if newer or grant:
            self._persist_hard()  # one write for the new term and the vote, before the reply
        self._send(sender, RequestVoteResponse(self.term, grant))

    def _on_vote_response(self, sender: str, m: RequestVoteResponse) -> None:
        if m.pre_vote:
            if self.role != PRECANDIDATE:
                return
            if m.granted and m.term == self.term + 1:
                self._votes[sender] = True
                if self._tally() >= self._majority:
                    self._campaign()
            elif not m.granted and m.term > self.term:
                self._become_follower(m.term, None)
            elif not m.granted:
                self._votes[sender] = False
            return
        if m.term > self.term:
            self._become_follower(m.term, None)
            return
        if self.role != CANDIDATE or m.term != self.term:
            return
        self._votes[sender] = m.granted
        if self._tally() >= self._majority:
            self._become_leader()

    # ---- output helpers ------------------------------------------------------------------
    def _send(self, to: str, message: object) -> None:
        self._out.append(Send(to, message))

    def _persist_hard(self) -> None:
        self._out.append(Persist(HARD_KEY, encode(HardState(self.term, self.vote))))

    def _persist_snap(self, removed: list[int]) -> None:
        # The snapshot first: a crash before the deletes leaves only ignored leftovers.
        self._out.append(Persist(SNAP_KEY, encode(self.log.snap)))
        self._out.extend(Persist(entry_key(i), None) for i in removed)


def _entry_bytes(entry: Entry) -> int:
    return 0 if entry.block is None else sum(len(tx) for tx in entry.block.txs)


def _block_hash(entry: Entry) -> bytes:
    return entry.block.hash if entry.block is not None else b""


def _entries_chain(prev_term: int, term: int, entries: list[Entry], anchor: tuple[int, bytes] | None) -> bool:
    """Terms never fall and never pass the leader's; blocks carry their term and chain on."""
    last_term, last_block = prev_term, anchor
    for e in entries:
        if not last_term <= e.term <= term:
            return False
        last_term = e.term
        if e.block is None:
            continue
        h = e.block.header
        if h.engine != encode_term(e.term):
            return False
        if last_block is not None and (h.height != last_block[0] + 1 or h.parent_hash != last_block[1]):
            return False
        last_block = (h.height, e.block.hash)
    return True
