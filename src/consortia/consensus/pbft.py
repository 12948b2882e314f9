"""PBFT: Practical Byzantine Fault Tolerance (Castro & Liskov, OSDI'99; TOCS 2002), one block per
sequence number.

n = len(peers) replicas tolerate f = (n-1)//3 byzantine ones. The primary of view v is
peers[v % n]. Sequence number = block height, and the primary proposes height h only after it
committed h-1 locally, so at most one block is in flight (pipelining is a later optimisation).

Normal case (§4.2): the primary asks the driver to build a block and broadcasts
PRE-PREPARE(v, seq, digest, block); a backup that accepts it (current view, primary's signature,
next height, parent = its head, no other digest accepted for (v, seq)) has the driver execute
it and, if valid, broadcasts PREPARE. With the pre-prepare and quorum-1 matching prepares
from distinct backups it is *prepared* and broadcasts COMMIT, whose `commit_signature` is its
block signature; a quorum of commits (or the channel's stricter `commit_quorum`) is both
committed-local and the block's commit certificate. The quorum is 2f+1 when n = 3f+1 (in
general the smallest size any two of which share f+1 replicas).

Checkpoints (§4.3): every `checkpoint_interval` heights each replica signs CHECKPOINT(seq,
hash); a quorum makes it stable and everything at or below it is garbage-collected. Messages
for sequences outside (low, low + window] are ignored, where low is the stable checkpoint (or
a height the driver reached by block sync, which it verified).

View change (§4.4): a replica with work pending (transactions in its pool, or an accepted
pre-prepare) and no commit for the request timeout broadcasts VIEW-CHANGE(v+1, stable
checkpoint proof, P set of prepared certificates). The request timer counts only time spent
waiting on others: it starts over when the replica's own driver finishes a block job and when
it accepts the primary's pre-prepare, it is at least twice the driver's time on a recent
block, and a primary with its pre-prepare out waits the maximum unless another replica asks
for a view change (see `_request_timeout_ms`). The new primary, given a quorum of them,
broadcasts NEW-VIEW with the O set: pre-prepares, re-signed in the new view, for every
sequence above the highest stable checkpoint that has a prepared certificate (highest view
wins). Backups recompute the O set before entering the view. Timeouts double with each
consecutive view change without a commit but never exceed `view_timeout_max_ms`; the wait for
a NEW-VIEW starts only once 2f+1 replicas asked for that view. A replica that sees f+1 view
changes for higher views joins the lowest view backed by f+1 of them (§4.5.2), so one slow
timer cannot stall the group.

Safety rests on signatures: certificates are only ever built from signed messages, and before
sending a pre-prepare, prepare or commit the replica persists what it sent for that
(view, seq), its prepared certificate and the block itself (when it holds it), and it
persists its view before any view-change message, so after a restart it never contradicts
itself and a block that a view change may re-issue is never lost.

Liveness: with at most f faulty replicas and a network that is synchronous after it heals, a
block commits within view_timeout_max_ms plus a few message delays once a correct replica is
primary; each faulty primary in between costs at most one more view_timeout_max_ms (so at
most f+1 of them in the worst case). Lost messages are recovered without a view change where
possible: a stuck replica re-sends its latest messages every `resend_ms`, a replica that
re-sends votes for a sequence others already committed gets theirs back, and a new primary
re-sends its NEW-VIEW to a replica still asking for that view. A replica that falls behind by
more than the blocks carried in view changes (it sees a quorum commit past its height, or a
stable checkpoint above it) relies on the driver's block sync, and does not start view
changes while the others make progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from consortia.consensus.interface import (
    Action,
    Broadcast,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    ExecuteProposal,
    PeerMessage,
    Persist,
    ProposalBuilt,
    ProposalExecuted,
    Send,
    Tick,
)
from consortia.consensus.pbft_certs import (
    VIEW_CHANGE_BLOCKS_MAX,
    Committee,
    NewViewPlan,
    plan_new_view,
    verify_commit_certificate,
    verify_new_view,
    verify_view_change,
    well_formed,
)
from consortia.consensus.pbft_messages import (
    BLOCK_KEY_PREFIX,
    MESSAGE_TYPES,
    SLOT_KEY_PREFIX,
    STABLE_KEY,
    VIEW_KEY,
    Checkpoint,
    CheckpointProof,
    Commit,
    NewView,
    PbftMessage,
    Prepare,
    PreparedCert,
    PrePrepare,
    SlotRecord,
    ViewChange,
    ViewRecord,
    Vote,
    block_key,
    checkpoint_bytes,
    commit_bytes,
    new_view_bytes,
    prepare_bytes,
    preprepare_bytes,
    slot_key,
    view_change_bytes,
)
from consortia.crypto import ZERO_HASH
from consortia.types import (
    Block,
    BlockSignature,
    CodecError,
    CommitCertificate,
    commit_signing_bytes,
    decode,
    encode,
)

__all__ = [
    "MESSAGE_TYPES",
    "PbftConfigError",
    "PbftEngine",
    "PbftError",
    "PbftStateError",
    "verify_commit_certificate",
]

DEFAULT_PARAMS: Mapping[str, int] = {
    "checkpoint_interval": 10,
    "window": 64,
    "view_timeout_ms": 2000,
    "view_timeout_max_ms": 16000,
    "resend_ms": 500,
    "buffer_per_sender": 64,
}
# Committed blocks the engine keeps in memory, for NEW-VIEW messages to hand on.
RECENT_BLOCKS = VIEW_CHANGE_BLOCKS_MAX
# Pre-prepares (which carry whole blocks) are kept only this far past the committed height:
# a correct primary runs at most one block ahead of a correct, up-to-date backup.
PREPREPARE_AHEAD = 2
# The request timer is at least this many times the most time this replica's own driver
# spent on one of the last WORK_KEPT blocks (building or executing it, and committing it),
# so blocks that take seconds to build and execute under load are not mistaken for a faulty
# primary. Only local work counts: time lost to a faulty network does not lengthen it.
WORK_FACTOR = 2
WORK_KEPT = 8


class PbftError(Exception):
    """Base of the PBFT engine's errors."""


class PbftConfigError(PbftError, ValueError):
    """The engine setup is unusable (membership, parameters, quorum)."""


class PbftStateError(PbftError):
    """Persisted engine state does not decode."""


@dataclass
class _Slot:
    """Everything this replica knows about one sequence number."""

    seq: int
    # The pre-prepare accepted in the current view (none while changing views).
    view: int = -1
    digest: bytes = b""
    pp: PrePrepare | None = None
    from_nv: bool = False  # re-issued by a NEW-VIEW: backed by a prepared certificate
    prepares: dict[str, Prepare] = field(default_factory=dict)  # current view, one per sender
    commits: dict[str, Commit] = field(default_factory=dict)  # current view, one per sender
    my_prepare: Prepare | None = None
    my_commit: Commit | None = None
    commit_emitted: bool = False
    late: set[tuple[str, str]] = field(default_factory=set)  # (peer, kind) of votes after commit
    # Kept across views.
    blocks: dict[bytes, Block] = field(default_factory=dict)  # candidate blocks by digest
    persisted_blocks: set[bytes] = field(default_factory=set)  # digests whose block is on disk
    validity: tuple[bytes, bool] | None = None  # (digest, valid) from the driver
    cert: PreparedCert | None = None  # the highest-view prepared certificate (P set entry)
    sent: tuple[int, bytes] | None = None  # (view, digest) pre-prepared/prepared, persisted

    def new_view(self) -> None:
        self.view, self.digest, self.pp, self.from_nv = -1, b"", None, False
        self.prepares, self.commits = {}, {}
        self.my_prepare = self.my_commit = None
        self.commit_emitted = False
        self.late = set()

    def block_for(self, digest: bytes) -> Block | None:
        return self.blocks.get(digest)

    def committed(self, keep: bytes | None) -> None:
        """Drop what only mattered until commit; the certificate stays for view changes, and
        the committed block (`keep`) while it is among the newest, for a NEW-VIEW to hand on."""
        self.blocks = {keep: self.blocks[keep]} if keep is not None and keep in self.blocks else {}
        self.validity = None
        self.prepares, self.commits = {}, {}

    def entries(self) -> int:
        return len(self.prepares) + len(self.commits) + (self.pp is not None) + (self.cert is not None)


def _int_param(params: Mapping[str, int | str], name: str) -> int:
    raw = params.get(name, DEFAULT_PARAMS[name])
    try:
        value = int(raw)
    except ValueError as exc:
        raise PbftConfigError(f"{name} must be an integer, not {raw!r}") from exc
    if value <= 0:
        raise PbftConfigError(f"{name} must be positive")
    return value


class PbftEngine:
    """A PBFT replica as a sans-IO state machine (see the module docstring).

    Parameters (`EngineSetup.params`, all positive integers): checkpoint_interval (10),
    window (64, at least one interval), view_timeout_ms (2000), view_timeout_max_ms (16000),
    resend_ms (500), buffer_per_sender (64: messages for views not yet entered, per peer).

    Raises PbftConfigError from the constructor for an unusable setup, PbftStateError for
    persisted state that does not decode; `step` never raises on peer input.
    """

    name = "pbft"

    def __init__(self, setup: EngineSetup) -> None:
        names = [p.name for p in setup.peers]
        if not names or names != sorted(set(names)):
            raise PbftConfigError("peers must be non-empty, distinct and sorted by name")
        if setup.node_id not in names:
            raise PbftConfigError(f"{setup.node_id!r} is not in the validator set")
        limits = setup.limits
        if limits.txs_max <= 0 or limits.bytes_max <= 0 or limits.wait_ms < 0:
            raise PbftConfigError("block limits must be positive")
        self._c = Committee(setup.peers)
        self._me = setup.node_id
        self._signer = setup.signer
        self._limits = limits
        self._interval = _int_param(setup.params, "checkpoint_interval")
        self._window = _int_param(setup.params, "window")
        self._timeout_base_ms = _int_param(setup.params, "view_timeout_ms")
        self._timeout_max_ms = _int_param(setup.params, "view_timeout_max_ms")
        self._resend_ms = _int_param(setup.params, "resend_ms")
        self._buffer_max = _int_param(setup.params, "buffer_per_sender")
        if self._window < self._interval:
            raise PbftConfigError("window must span at least one checkpoint interval")
        if self._timeout_max_ms < self._timeout_base_ms:
            raise PbftConfigError("view_timeout_max_ms must be >= view_timeout_ms")
        self._certs_max = 2 * self._window
        # Distinct blocks held per sequence: a correct replica prepares a new one at a sequence
        # only in a view whose NEW-VIEW re-issued nothing there, so about f+1 of them at most.
        self._blocks_per_slot = self._c.f + 2
        self._commit_quorum = max(self._c.quorum, setup.commit_quorum)
        if self._commit_quorum > self._c.n:
            raise PbftConfigError(f"commit quorum {self._commit_quorum} exceeds {self._c.n} validators")

        # Chain.
        self._height = setup.height
        self._head = setup.head
        self._hashes: dict[int, bytes] = {setup.height: setup.head}  # committed, above stable
        self._anchor = setup.height  # a height the driver vouches for (start or block sync)
        # View.
        self._view = 0
        self._changing = False
        self._floor = 0  # sequences up to here are decided by this view's NEW-VIEW O set
        self._awaiting_nv = False  # restarted inside a view: its NEW-VIEW is welcome once more
        # Logs.
        self._stable = CheckpointProof(0, ZERO_HASH, [])
        self._slots: dict[int, _Slot] = {}
        self._checkpoints: dict[int, dict[str, Checkpoint]] = {}
        self._view_changes: dict[str, ViewChange] = {}  # latest valid one per replica
        self._future: dict[str, list[PbftMessage]] = {}  # for views not yet entered
        self._persisted_slots: set[int] = set()
        self._helped: set[tuple[str, int]] = set()  # (peer, seq) we re-sent our votes to
        self._nv_resent: set[str] = set()  # peers we re-sent this view's NEW-VIEW to
        self._verified_certs: set[bytes] = set()
        # Timers and in-flight driver requests.
        self._now: int | None = None
        self._progress_ms: int | None = None
        self._busy_ms = 0  # our driver's time on the next height so far
        self._work_ms: list[int] = []  # our driver's time on each recent block, newest last
        self._busy_since_ms: int | None = None  # our driver has a job in flight since
        self._vc_started_ms: int | None = None
        self._vc_armed = False  # 2f+1 asked for the view we are changing to: its timer runs
        self._last_resend_ms: int | None = None
        self._backoff = 0
        self._building: tuple[int, int] | None = None
        self._pending_since_ms: int | None = None
        self._executing: bytes | None = None
        # Own messages, re-sent while stuck.
        self._my_vc: ViewChange | None = None
        self._my_nv: NewView | None = None
        self._my_checkpoint: Checkpoint | None = None
        # Operator counters.
        self._drops: dict[str, int] = {}
        self._stale = 0
        self._primary_faults = 0
        self._out: list[Action] = []
        self._restore(setup.persisted)

    @classmethod
    def from_setup(cls, setup: EngineSetup) -> PbftEngine:
        return cls(setup)

    def _restore(self, persisted: Mapping[str, bytes]) -> None:
        try:
            if (raw := persisted.get(STABLE_KEY)) is not None:
                self._stable = decode(raw, CheckpointProof)
            if (raw := persisted.get(VIEW_KEY)) is not None:
                record = decode(raw, ViewRecord)
                self._view, self._changing, self._floor = record.view, record.changing, record.floor
                # The O set of the view we were in is gone with memory: take its NEW-VIEW again.
                self._awaiting_nv = record.view > 0 and not record.changing
                self._backoff = 1 if record.changing else 0
            for key in sorted(persisted):
                if key.startswith(BLOCK_KEY_PREFIX):
                    block = decode(persisted[key], Block)
                    if block.header.height > self._stable.seq:
                        slot = self._slot(block.header.height)
                        slot.blocks[block.hash] = block
                        slot.persisted_blocks.add(block.hash)
                    continue
                if not key.startswith(SLOT_KEY_PREFIX):
                    continue
                slot_record = decode(persisted[key], SlotRecord)
                if slot_record.seq <= self._stable.seq:
                    continue
                slot = self._slot(slot_record.seq)
                slot.sent = (slot_record.view, slot_record.digest)
                slot.cert = slot_record.cert
                self._persisted_slots.add(slot_record.seq)
        except CodecError as exc:
            raise PbftStateError(f"persisted PBFT state does not decode: {exc}") from exc

    # ---- the interface -----------------------------------------------------------------
    def step(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            self._on_tick(event)
        elif isinstance(event, ProposalBuilt):
            self._on_built(event.block)
        elif isinstance(event, ProposalExecuted):
            self._on_executed(event)
        elif isinstance(event, PeerMessage):
            self._on_message(event.sender, event.message)
        elif isinstance(event, Committed):
            self._on_committed(event)
        out, self._out = self._out, []
        return out

    def status(self) -> dict[str, int | str]:
        return {
            "engine": self.name,
            "view": self._view,
            "primary": self._c.primary(self._view),
            "height": self._height,
            "stable_checkpoint": self._stable.seq,
            "dropped_msgs": sum(self._drops.values()),
            "stale_msgs": self._stale,
            "view_changing": int(self._changing),
            "timeout_ms": self._timeout_ms(),
            "work_ms": max(self._work_ms, default=0),
            "primary_faults": self._primary_faults,
            "log_entries": self.log_entries(),
        }

    def drop_reasons(self) -> dict[str, int]:
        """Dropped peer messages by reason (bad signature, equivocation, flood, ...)."""
        return dict(sorted(self._drops.items()))

    def log_entries(self) -> int:
        """Messages and certificates held in memory: bounded by the window and validator count."""
        return (
            sum(s.entries() for s in self._slots.values())
            + sum(len(c) for c in self._checkpoints.values())
            + len(self._view_changes)
            + sum(len(q) for q in self._future.values())
        )

    # ---- small helpers -----------------------------------------------------------------
    def _primary(self) -> str:
        return self._c.primary(self._view)

    def _low(self) -> int:
        return max(self._stable.seq, self._anchor)

    def _timeout_ms(self) -> int:
        """The configured base, or twice the most our driver spent on a recent block when
        that is longer (a timer shorter than building and executing a block takes would
        accuse a correct primary and start view changes that only make the next, bigger
        block slower still), doubled per consecutive failed view change, never above the
        maximum."""
        base = max(self._timeout_base_ms, WORK_FACTOR * max(self._work_ms, default=0))
        return min(base << min(self._backoff, 32), self._timeout_max_ms)

    def _sign(self, message: bytes) -> bytes:
        return self._signer.key.sign(message)

    def _broadcast(self, message: PbftMessage) -> None:
        self._out.append(Broadcast(message))

    def _drop(self, reason: str) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + 1

    def _slot(self, seq: int) -> _Slot:
        slot = self._slots.get(seq)
        if slot is None:
            slot = self._slots[seq] = _Slot(seq)
        return slot

    def _persist_view(self) -> None:
        self._out.append(Persist(VIEW_KEY, encode(ViewRecord(self._view, self._changing, self._floor))))

    def _persist_slot(self, slot: _Slot) -> None:
        if slot.sent is None:  # only what we sent is worth remembering
            return
        view, digest = slot.sent
        record = SlotRecord(slot.seq, view, digest, slot.cert)
        self._out.append(Persist(slot_key(slot.seq), encode(record)))
        self._persisted_slots.add(slot.seq)

    def _record_sent(self, slot: _Slot, view: int, digest: bytes) -> None:
        """Persist that we vouch for `digest` at (view, seq), and its block: once a quorum may
        hold a certificate for it, a view change can pick it, and then its block must not be
        lost even if every replica restarts."""
        block = slot.block_for(digest)
        if block is not None and digest not in slot.persisted_blocks and slot.seq > self._height:
            self._out.append(Persist(block_key(slot.seq, digest), encode(block)))
            slot.persisted_blocks.add(digest)
        if slot.sent != (view, digest):
            slot.sent = (view, digest)
            self._persist_slot(slot)

    def _keep_block(self, slot: _Slot, block: Block, digest: bytes) -> None:
        """Hold a candidate block; at most `_blocks_per_slot`, never the ones in play."""
        slot.blocks[digest] = block
        while len(slot.blocks) > self._blocks_per_slot:
            in_play = {
                slot.digest,
                slot.cert.digest if slot.cert else b"",
                slot.sent[1] if slot.sent else b"",
            }
            victim = next((d for d in slot.blocks if d not in in_play and d != digest), None)
            if victim is None:
                return
            del slot.blocks[victim]
            self._forget_block(slot, victim)

    def _forget_block(self, slot: _Slot, digest: bytes) -> None:
        if digest in slot.persisted_blocks:
            slot.persisted_blocks.discard(digest)
            self._out.append(Persist(block_key(slot.seq, digest), None))

    # ---- time ----------------------------------------------------------------------------
    def _on_tick(self, tick: Tick) -> None:
        last, now = self._now, tick.now_ms
        self._now = now
        if self._progress_ms is None:
            self._progress_ms = now
        if self._changing:
            # §4.5.2: the wait for NEW-VIEW starts only once 2f+1 replicas asked for this view
            # (see _arm_view_change_timer), then runs out even if some of them move on. A
            # replica alone (say, cut off) keeps re-sending its VIEW-CHANGE instead of climbing
            # to views the others would need many timeouts to reach.
            if self._vc_armed:
                if self._vc_started_ms is None:
                    self._vc_started_ms = now
                if now - self._vc_started_ms >= self._timeout_ms():
                    self._start_view_change(self._view + 1)
        else:
            waiting = tick.pending_txs > 0 or self._has_uncommitted()
            if waiting and self._driver_busy(now):
                # Our own driver is building, executing or committing: time we spend is no
                # sign that anyone else failed, so the timer starts over once the job is done.
                self._progress_ms = now
                if last is not None and now > last:
                    self._busy_ms += now - last
            if not waiting:
                self._progress_ms = now
            elif now - self._progress_ms >= self._request_timeout_ms():
                self._start_view_change(self._view + 1)
            else:
                self._maybe_propose(tick)
        self._maybe_resend(now)

    def _request_timeout_ms(self) -> int:
        """A primary whose pre-prepare for the next height is out waits on the backups, and
        gives up on itself early only when some other replica asks for a view change too;
        otherwise after the maximum timeout. Were it to leave its view while the backups are
        merely slow (executing a large block), they would commit without it and then stall
        until they timed out as well; when the backups really are stuck, they time out and
        ask for a view change, and that brings the primary along."""
        slot = self._slots.get(self._height + 1)
        if (
            self._primary() == self._me
            and slot is not None
            and slot.pp is not None
            and slot.view == self._view
            and not any(
                vc.new_view > self._view for name, vc in self._view_changes.items() if name != self._me
            )
        ):
            return self._timeout_max_ms
        return self._timeout_ms()

    def _driver_busy(self, now: int) -> bool:
        """A block job of ours is in flight (for at most the maximum timeout: a driver that
        never answers must not silence the timer for good)."""
        slot = self._slots.get(self._height + 1)
        busy = (
            self._building is not None
            or self._executing is not None
            or (slot is not None and slot.commit_emitted)
        )
        if not busy:
            self._busy_since_ms = None
            return False
        if self._busy_since_ms is None:
            self._busy_since_ms = now
        return now - self._busy_since_ms < self._timeout_max_ms

    def _has_uncommitted(self) -> bool:
        if self._building is not None:
            return True
        return any(
            s.pp is not None and s.view == self._view for q, s in self._slots.items() if q > self._height
        )

    def _maybe_propose(self, tick: Tick) -> None:
        if self._primary() != self._me or self._building is not None:
            return
        if tick.pending_txs == 0:
            self._pending_since_ms = None
            return
        seq = self._height + 1
        if seq > self._low() + self._window or self._height < self._floor:
            return
        slot = self._slots.get(seq)
        if slot is not None and (
            (slot.pp is not None and slot.view == self._view)
            # Pre-prepared in this view before a restart: the block is gone, so wait for a view change.
            or (slot.sent is not None and slot.sent[0] == self._view)
        ):
            return
        if self._pending_since_ms is None:
            self._pending_since_ms = tick.now_ms
        full = tick.pending_txs >= self._limits.txs_max or tick.pending_bytes >= self._limits.bytes_max
        if not full and tick.now_ms - self._pending_since_ms < self._limits.wait_ms:
            return
        self._building = (self._view, seq)
        self._out.append(BuildProposal(seq, self._head, encode(self._view)))

    def _maybe_resend(self, now: int) -> None:
        """Re-send our latest messages while stuck: the network may have lost them."""
        if self._last_resend_ms is not None and now - self._last_resend_ms < self._resend_ms:
            return
        if self._changing:
            if self._my_vc is None or self._my_vc.new_view != self._view:
                self._my_vc = self._build_view_change()  # after a restart
                self._view_changes[self._me] = self._my_vc
                self._arm_view_change_timer()
            self._broadcast(self._my_vc)
            self._last_resend_ms = now
            return
        assert self._progress_ms is not None  # set by the tick that called us
        if now - self._progress_ms < self._resend_ms:
            return
        self._last_resend_ms = now
        if self._my_nv is not None and self._my_nv.view == self._view:
            self._broadcast(self._my_nv)
        slot = self._slots.get(self._height + 1)
        if slot is not None and slot.pp is not None and slot.view == self._view:
            if self._primary() == self._me and slot.pp.block is not None:
                self._broadcast(slot.pp)
            if slot.my_prepare is not None:
                self._broadcast(slot.my_prepare)
            if slot.my_commit is not None:
                self._broadcast(slot.my_commit)
        if self._my_checkpoint is not None and self._my_checkpoint.seq > self._stable.seq:
            self._broadcast(self._my_checkpoint)

    # ---- driver answers ------------------------------------------------------------------
    def _on_built(self, block: Block) -> None:
        building, self._building = self._building, None
        header = block.header
        if building is None or self._changing or self._primary() != self._me:
            return
        view, seq = building
        if (
            view != self._view
            or seq != self._height + 1
            or header.height != seq
            or header.parent_hash != self._head
            or header.engine != encode(view)
        ):
            return  # stale build; the next tick asks again
        slot = self._slot(seq)
        if (slot.pp is not None and slot.view == view) or (slot.sent is not None and slot.sent[0] == view):
            return
        digest = block.hash
        pp = PrePrepare(view, seq, digest, self._sign(preprepare_bytes(view, seq, digest)), block)
        self._keep_block(slot, block, digest)
        self._record_sent(slot, view, digest)
        self._install(slot, pp, from_nv=False)
        slot.validity = (digest, True)
        self._pending_since_ms = None
        self._broadcast(pp)
        self._progress(slot)

    def _on_executed(self, event: ProposalExecuted) -> None:
        if self._executing is None or self._executing != event.block_hash:
            return
        self._executing = None
        slot = self._slots.get(self._height + 1)
        if slot is None or slot.block_for(event.block_hash) is None:
            return
        slot.validity = (event.block_hash, event.valid)
        self._progress(slot)

    def _on_committed(self, event: Committed) -> None:
        if event.height <= self._height:
            return
        slot = self._slots.get(event.height)
        ours = (
            event.height == self._height + 1
            and slot is not None
            and slot.commit_emitted
            and slot.digest == event.block_hash
        )
        if not ours:
            self._anchor = max(self._anchor, event.height)  # block sync: the driver checked it
        else:
            self._work_ms = [*self._work_ms[1 - WORK_KEPT :], self._busy_ms]
        self._busy_ms = 0
        self._height, self._head = event.height, event.block_hash
        self._hashes[event.height] = event.block_hash
        self._progress_ms = self._now
        self._backoff = 0
        self._pending_since_ms = None
        self._executing = None
        if self._building is not None and self._building[1] <= self._height:
            self._building = None
        self._forget_below(self._height - self._certs_max)
        for seq, s in self._slots.items():
            if seq <= self._height:
                for digest in sorted(s.persisted_blocks):  # the ledger holds it now
                    self._forget_block(s, digest)
                s.committed(self._hashes.get(seq) if seq > self._height - RECENT_BLOCKS else None)
        if event.height % self._interval == 0:
            self._send_checkpoint(event.height, event.block_hash)
        nxt = self._slots.get(self._height + 1)
        if nxt is not None:
            self._progress(nxt)

    def _forget_below(self, seq: int) -> None:
        """Garbage-collect sequences up to `seq`: on a stable checkpoint, and as a hard memory
        bound when checkpoints stall behind block sync (a view change never needs
        certificates that far below our head: the P set holds at most certs_max)."""
        for q in sorted(self._persisted_slots):
            if q <= seq:
                self._out.append(Persist(slot_key(q), None))
                self._persisted_slots.discard(q)
        for q, slot in sorted(self._slots.items()):
            if q <= seq:
                for digest in sorted(slot.persisted_blocks):
                    self._forget_block(slot, digest)
        self._slots = {q: s for q, s in self._slots.items() if q > seq}
        self._helped = {(p, q) for p, q in self._helped if q > seq}
        self._checkpoints = {q: c for q, c in self._checkpoints.items() if q > seq}
        self._hashes = {q: h for q, h in self._hashes.items() if q > seq or q == self._height}

    # ---- peer messages -------------------------------------------------------------------
    def _on_message(self, sender: str, message: object) -> None:
        if sender == self._me or sender not in self._c.by_name:
            self._drop("not_a_member")
            return
        typed = well_formed(message, self._c, self._certs_max)
        if typed is None:
            self._drop("malformed")
            return
        self._dispatch(sender, typed)

    def _dispatch(self, sender: str, m: PbftMessage) -> None:
        if isinstance(m, PrePrepare | Prepare | Commit):
            if m.view < self._view:
                self._stale += 1
                return
            if m.view > self._view or self._changing:
                self._buffer(sender, m)
                return
            if isinstance(m, PrePrepare):
                self._on_preprepare(sender, m)
            elif isinstance(m, Prepare):
                self._on_prepare(sender, m)
            else:
                self._on_commit(sender, m)
        elif isinstance(m, Checkpoint):
            self._on_checkpoint(sender, m)
        elif isinstance(m, ViewChange):
            self._on_view_change(sender, m)
        else:
            self._on_new_view(sender, m)

    def _buffer(self, sender: str, m: PbftMessage) -> None:
        queue = self._future.setdefault(sender, [])
        if len(queue) >= self._buffer_max:
            self._drop("flood")
            return
        queue.append(m)

    def _vote_in_window(self, seq: int) -> bool:
        if self._height < seq <= self._low() + self._window:
            return True
        self._stale += 1
        return False

    def _on_preprepare(self, sender: str, pp: PrePrepare) -> None:
        if sender != self._primary():
            self._drop("not_primary")
            return
        if not self._vote_in_window(pp.seq):
            return
        if pp.seq > self._height + PREPREPARE_AHEAD:
            self._stale += 1  # too far ahead to hold its block; the primary re-sends it
            return
        if not self._c.verify(sender, preprepare_bytes(pp.view, pp.seq, pp.digest), pp.signature):
            self._drop("bad_signature")
            return
        block = pp.block
        if (
            block is None
            or block.hash != pp.digest
            or block.header.height != pp.seq
            or block.header.engine != encode(pp.view)
            or pp.seq <= self._floor
        ):
            self._drop("bad_preprepare")
            return
        slot = self._slot(pp.seq)
        if slot.pp is not None and slot.view == pp.view:
            if slot.digest == pp.digest:
                self._stale += 1
            else:
                self._drop("equivocation")
                self._primary_fault()
            return
        if slot.sent is not None and slot.sent[0] == pp.view and slot.sent[1] != pp.digest:
            self._drop("equivocation")  # a different block than we prepared before a restart
            self._primary_fault()
            return
        self._install(slot, pp, from_nv=False)
        self._keep_block(slot, block, pp.digest)
        if pp.seq == self._height + 1:
            # The primary did its part; from here a quorum of correct replicas can commit
            # without it. (Once per sequence and view: a repeat is stale, a rival equivocation.)
            self._progress_ms = self._now
        self._progress(slot)

    def _help_laggard(self, sender: str, seq: int, kind: str) -> None:
        """A peer re-sends votes on a sequence we committed in this view: it missed votes. Send
        it ours, once, so it can commit without a view change or block sync."""
        slot = self._slots.get(seq)
        if slot is None or slot.my_commit is None or (sender, seq) in self._helped:
            return
        if (sender, kind) not in slot.late:
            slot.late.add((sender, kind))  # one late vote is normal; a re-sent one means it is stuck
            return
        self._helped.add((sender, seq))
        if slot.my_prepare is not None:
            self._out.append(Send(sender, slot.my_prepare))
        self._out.append(Send(sender, slot.my_commit))

    def _already_voted(self, held: Prepare | Commit | None, m: Prepare | Commit) -> bool:
        """True when the sender already voted in this slot: a repeat is stale, a different
        vote is equivocation; either way the new message is not counted."""
        if held is None:
            return False
        if held == m:
            self._stale += 1
        else:
            self._drop("equivocation")
        return True

    def _on_prepare(self, sender: str, m: Prepare) -> None:
        if sender == self._primary():
            self._drop("prepare_from_primary")
            return
        if m.seq <= self._height:
            self._help_laggard(sender, m.seq, type(m).__name__)
        if not self._vote_in_window(m.seq):
            return
        slot = self._slot(m.seq)
        if self._already_voted(slot.prepares.get(sender), m):
            return
        if not self._c.verify(sender, prepare_bytes(m.view, m.seq, m.digest), m.signature):
            self._drop("bad_signature")
            return
        slot.prepares[sender] = m
        self._progress(slot)

    def _on_commit(self, sender: str, m: Commit) -> None:
        if m.seq <= self._height:
            self._help_laggard(sender, m.seq, type(m).__name__)
        if not self._vote_in_window(m.seq):
            return
        slot = self._slot(m.seq)
        if self._already_voted(slot.commits.get(sender), m):
            return
        peer = self._c.by_name[sender]
        if not peer.verify(commit_bytes(m.view, m.seq, m.digest, m.commit_signature), m.signature):
            self._drop("bad_signature")
            return
        if not peer.verify(commit_signing_bytes(m.digest), m.commit_signature):
            self._drop("bad_commit_signature")
            return
        slot.commits[sender] = m
        if self._count_commits(slot, m.digest) >= self._commit_quorum:
            self._progress_ms = self._now  # a quorum moves on: we may lag, but nobody is stuck
        self._progress(slot)

    def _on_checkpoint(self, sender: str, m: Checkpoint) -> None:
        if m.seq % self._interval != 0 or not self._stable.seq < m.seq <= self._low() + self._window:
            self._stale += 1
            return
        votes = self._checkpoints.setdefault(m.seq, {})
        held = votes.get(sender)
        if held is not None:
            if held == m:
                self._stale += 1
            else:
                self._drop("equivocation")
            return
        if not self._c.verify(sender, checkpoint_bytes(m.seq, m.digest), m.signature):
            self._drop("bad_signature")
            return
        votes[sender] = m
        self._check_stable(m.seq, m.digest)

    # ---- normal case ---------------------------------------------------------------------
    def _install(self, slot: _Slot, pp: PrePrepare, from_nv: bool) -> None:
        slot.view, slot.digest, slot.pp, slot.from_nv = pp.view, pp.digest, pp, from_nv

    def _count_prepares(self, slot: _Slot) -> int:
        primary = self._c.primary(slot.view)
        return sum(
            1
            for name, p in slot.prepares.items()
            if name != primary and p.view == slot.view and p.digest == slot.digest
        )

    def _count_commits(self, slot: _Slot, digest: bytes) -> int:
        return sum(1 for c in slot.commits.values() if c.view == self._view and c.digest == digest)

    def _progress(self, slot: _Slot) -> None:
        """Move one sequence along: prepare, then commit, then hand the block to the driver."""
        if self._changing or slot.pp is None or slot.view != self._view or slot.seq <= self._height:
            return
        is_primary = self._primary() == self._me
        if not is_primary and slot.my_prepare is None and not self._may_prepare(slot):
            return
        if slot.my_commit is None and self._count_prepares(slot) >= self._c.quorum - 1:
            self._send_commit(slot)
        self._maybe_commit_block(slot)

    def _may_prepare(self, slot: _Slot) -> bool:
        """Send PREPARE once the block is known good; False while that is not yet known."""
        if not slot.from_nv:
            # A fresh proposal must extend our head and execute cleanly (§4.2 acceptance).
            block = slot.block_for(slot.digest)
            if slot.seq != self._height + 1 or block is None:
                return False
            if block.header.parent_hash != self._head:
                self._primary_fault()
                return False
            if slot.validity is None or slot.validity[0] != slot.digest:
                if self._executing != slot.digest:
                    self._executing = slot.digest
                    self._out.append(ExecuteProposal(block))
                return False
            if not slot.validity[1]:
                self._primary_fault()
                return False
        # O-set entries carry a prepared certificate: a quorum already checked that block.
        self._send_prepare(slot)
        return True

    def _send_prepare(self, slot: _Slot) -> None:
        self._record_sent(slot, slot.view, slot.digest)
        prepare = Prepare(
            slot.view, slot.seq, slot.digest, self._sign(prepare_bytes(slot.view, slot.seq, slot.digest))
        )
        slot.my_prepare = prepare
        slot.prepares[self._me] = prepare
        self._broadcast(prepare)

    def _send_commit(self, slot: _Slot) -> None:
        assert slot.pp is not None  # only called for a slot with a pre-prepare
        primary = self._c.primary(slot.view)
        votes = [
            Vote(name, p.signature)
            for name in self._c.names
            if (p := slot.prepares.get(name)) is not None
            and name != primary
            and p.view == slot.view
            and p.digest == slot.digest
        ]
        slot.cert = PreparedCert(slot.view, slot.seq, slot.digest, slot.pp.signature, votes)
        self._record_sent(slot, slot.view, slot.digest)
        self._persist_slot(slot)
        self._broadcast(self._commit_message(slot))

    def _commit_message(self, slot: _Slot) -> Commit:
        commit_sig = self._signer.sign_block(slot.digest).signature
        signed = commit_bytes(slot.view, slot.seq, slot.digest, commit_sig)
        commit = Commit(slot.view, slot.seq, slot.digest, commit_sig, self._sign(signed))
        slot.my_commit = commit
        slot.commits[self._me] = commit
        return commit

    def _maybe_commit_block(self, slot: _Slot) -> None:
        if slot.commit_emitted or slot.seq != self._height + 1:
            return
        block = slot.block_for(slot.digest)
        if block is None or block.header.parent_hash != self._head:
            return
        signers = [
            name
            for name in self._c.names
            if (c := slot.commits.get(name)) is not None and c.view == slot.view and c.digest == slot.digest
        ]
        if len(signers) < self._commit_quorum:
            return
        signatures = [
            BlockSignature(self._c.by_name[name].cert_der, slot.commits[name].commit_signature)
            for name in signers[: self._commit_quorum]
        ]
        slot.commit_emitted = True
        self._out.append(CommitBlock(block, CommitCertificate(slot.seq, slot.digest, signatures)))

    def _primary_fault(self) -> None:
        """The current primary signed something no correct primary would: replace it."""
        self._primary_faults += 1
        if not self._changing:
            self._start_view_change(self._view + 1)

    # ---- checkpoints (§4.3) --------------------------------------------------------------
    def _send_checkpoint(self, seq: int, digest: bytes) -> None:
        if seq <= self._stable.seq:
            return
        checkpoint = Checkpoint(seq, digest, self._sign(checkpoint_bytes(seq, digest)))
        self._my_checkpoint = checkpoint
        self._checkpoints.setdefault(seq, {})[self._me] = checkpoint
        self._broadcast(checkpoint)
        self._check_stable(seq, digest)

    def _check_stable(self, seq: int, digest: bytes) -> None:
        votes = [
            Vote(name, c.signature)
            for name in self._c.names
            if (c := self._checkpoints.get(seq, {}).get(name)) is not None and c.digest == digest
        ]
        if len(votes) >= self._c.quorum:
            self._make_stable(CheckpointProof(seq, digest, votes))

    def _make_stable(self, proof: CheckpointProof) -> None:
        if proof.seq <= self._stable.seq:
            return
        self._stable = proof
        self._out.append(Persist(STABLE_KEY, encode(proof)))
        # Only what we committed ourselves is garbage: a replica a block or two behind the
        # others (still executing the block at the checkpoint when their checkpoint votes
        # arrive) keeps the votes it holds above its head and commits those blocks itself,
        # instead of dropping them and waiting for block sync.
        self._forget_below(min(proof.seq, self._height))
        if proof.seq > self._height:
            self._progress_ms = self._now  # the group moved past us

    # ---- view change (§4.4) --------------------------------------------------------------
    def _start_view_change(self, target: int) -> None:
        if target <= self._view:
            return
        self._view, self._changing = target, True
        self._awaiting_nv = False
        self._backoff += 1
        self._vc_armed = False
        self._last_resend_ms = self._now
        self._building = self._executing = None
        self._pending_since_ms = None
        self._busy_ms = 0
        self._my_nv = None
        for slot in self._slots.values():
            slot.new_view()
        self._helped.clear()
        self._persist_view()
        vc = self._build_view_change()
        self._my_vc = vc
        self._view_changes = {s: v for s, v in self._view_changes.items() if v.new_view >= target}
        self._view_changes[self._me] = vc
        self._prune_future()
        self._broadcast(vc)
        self._arm_view_change_timer()
        self._maybe_new_view()

    def _build_view_change(self) -> ViewChange:
        certs = [
            s.cert for q, s in sorted(self._slots.items()) if s.cert is not None and q > self._stable.seq
        ]
        certs = certs[-self._certs_max :]
        # The newest prepared blocks travel along, so replicas that never saw them (or that lag
        # by a block) need not wait for block sync after the view change.
        blocks = [
            b
            for c in certs[-VIEW_CHANGE_BLOCKS_MAX:]
            if (b := self._slots[c.seq].block_for(c.digest)) is not None
        ]
        unsigned = ViewChange(self._view, self._me, self._stable, certs, b"")
        signature = self._sign(view_change_bytes(unsigned))
        return ViewChange(self._view, self._me, self._stable, certs, signature, blocks)

    def _on_view_change(self, sender: str, vc: ViewChange) -> None:
        if vc.replica != sender:
            self._drop("wrong_replica")
            return
        if vc.new_view < self._view or (vc.new_view == self._view and not self._changing):
            nv = self._my_nv
            if nv is not None and nv.view == vc.new_view == self._view and sender not in self._nv_resent:
                # It asks for the view we lead already: it missed our NEW-VIEW (once per replica).
                self._nv_resent.add(sender)
                self._out.append(Send(sender, nv))
            self._stale += 1
            return
        held = self._view_changes.get(sender)
        if held is not None and held.new_view >= vc.new_view:
            self._stale += 1
            return
        if not verify_view_change(self._c, vc, self._interval, verified_certs=self._cert_cache()):
            self._drop("bad_view_change")
            return
        self._view_changes[sender] = vc
        # §4.5.2: f+1 replicas want a higher view, so at least one correct replica does.
        higher = sorted(
            (v.new_view for s, v in self._view_changes.items() if s != self._me and v.new_view > self._view),
            reverse=True,
        )
        if len(higher) > self._c.f:
            self._start_view_change(higher[self._c.f])
        self._arm_view_change_timer()
        self._maybe_new_view()

    def _cert_cache(self) -> set[bytes]:
        """Hashes of prepared certificates already verified (bounded: cleared when full)."""
        if len(self._verified_certs) > 4 * self._certs_max:
            self._verified_certs.clear()
        return self._verified_certs

    def _arm_view_change_timer(self) -> None:
        """§4.5.2: the wait for a NEW-VIEW starts once 2f+1 replicas asked for the view. One
        that already asks for a later view counts too: only its latest request is kept (and
        re-sent), and it has left this view behind as well, so waiting on it would be forever.
        """
        if not self._changing or self._vc_armed:
            return
        votes = sum(1 for vc in self._view_changes.values() if vc.new_view >= self._view)
        if votes >= self._c.quorum:
            self._vc_armed = True
            self._vc_started_ms = self._now

    def _maybe_new_view(self) -> None:
        if not self._changing or self._primary() != self._me:
            return
        vcs = [
            vc
            for name in self._c.names
            if (vc := self._view_changes.get(name)) is not None and vc.new_view == self._view
        ]
        if len(vcs) < self._c.quorum:
            return
        plan = plan_new_view(vcs)
        carried = {b.hash for vc in vcs for b in vc.blocks}
        pps: list[PrePrepare] = []
        for seq, digest in plan.o_set:
            own = self._slots[seq].block_for(digest) if seq in self._slots else None
            block = own if own is not None and digest not in carried else None
            sig = self._sign(preprepare_bytes(self._view, seq, digest))
            pps.append(PrePrepare(self._view, seq, digest, sig, block))
        nv = NewView(self._view, vcs, pps, self._sign(new_view_bytes(self._view, vcs, pps)))
        self._my_nv = nv
        self._enter_view(nv, plan)

    def _on_new_view(self, sender: str, nv: NewView) -> None:
        if sender != self._c.primary(nv.view):
            self._drop("not_primary")
            return
        if nv.view < self._view or (nv.view == self._view and not self._changing and not self._awaiting_nv):
            self._stale += 1
            return
        plan = verify_new_view(self._c, nv, self._interval, self._view_changes, self._cert_cache())
        if plan is None:
            self._drop("bad_new_view")
            return
        self._enter_view(nv, plan)

    def _enter_view(self, nv: NewView, plan: NewViewPlan) -> None:
        """Enter `nv.view`: adopt its stable checkpoint and the O set (persisted before any send)."""
        is_primary = self._c.primary(nv.view) == self._me
        if nv.view != self._view:
            for slot in self._slots.values():
                slot.new_view()
        self._helped.clear()
        self._view, self._changing, self._floor = nv.view, False, plan.floor
        self._vc_started_ms, self._vc_armed = None, False
        self._awaiting_nv = False
        self._progress_ms = self._now
        self._building = self._executing = None
        self._pending_since_ms = None
        self._busy_ms = 0
        self._my_vc = None
        self._nv_resent = set()
        self._view_changes = {s: v for s, v in self._view_changes.items() if v.new_view > nv.view}
        self._persist_view()
        if plan.stable.seq > self._stable.seq:
            self._make_stable(plan.stable)
        blocks = {b.hash: b for vc in nv.view_changes for b in vc.blocks}
        blocks.update({p.digest: p.block for p in nv.pre_prepares if p.block is not None})
        installed: list[_Slot] = []
        for pp in nv.pre_prepares:
            if pp.seq <= self._stable.seq:
                continue
            if pp.seq <= self._height and self._hashes.get(pp.seq) != pp.digest:
                continue  # decided here already, and we cannot vouch for the digest
            slot = self._slot(pp.seq)
            if slot.sent is not None and slot.sent[0] == nv.view and slot.sent[1] != pp.digest:
                continue  # never contradict what we sent in this view
            self._install(slot, PrePrepare(pp.view, pp.seq, pp.digest, pp.signature), from_nv=True)
            if (block := blocks.get(pp.digest)) is not None and slot.block_for(pp.digest) is None:
                self._keep_block(slot, block, pp.digest)
            if is_primary:
                self._record_sent(slot, nv.view, pp.digest)
            installed.append(slot)
        if is_primary:
            self._broadcast(nv)
        for slot in installed:
            if slot.seq <= self._height:
                # Already committed here: vote so replicas that lag can commit it in this view.
                if not is_primary:
                    self._send_prepare(slot)
                self._record_sent(slot, slot.view, slot.digest)
                self._broadcast(self._commit_message(slot))
            else:
                self._progress(slot)
        self._replay_future()

    def _prune_future(self) -> None:
        for name in list(self._future):
            kept = [m for m in self._future[name] if _view_of(m) >= self._view]
            if kept:
                self._future[name] = kept
            else:
                del self._future[name]

    def _replay_future(self) -> None:
        """Deliver buffered messages for the view just entered (they were early, not wrong)."""
        ready: list[tuple[str, PbftMessage]] = []
        for name in self._c.names:
            queue = self._future.pop(name, [])
            later = [m for m in queue if _view_of(m) > self._view]
            ready.extend((name, m) for m in queue if _view_of(m) == self._view)
            if later:
                self._future[name] = later
        for name, m in ready:
            self._dispatch(name, m)


def _view_of(m: PbftMessage) -> int:
    if isinstance(m, PrePrepare | Prepare | Commit):
        return m.view
    return 0
