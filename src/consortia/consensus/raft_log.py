"""The Raft log: entries in memory after a base point, and the persisted state layout.

Raft indexes and block heights differ: a new leader's no-op (§8) takes an index but no
height. Blocks in the log have consecutive heights, each chaining to the one before.

Two compaction points (§7): `snap` is what the persisted log no longer holds (blocks the
ledger has made durable); `base` <= `snap` is where the in-memory copy starts. Entries
between them stay in memory for a while so a briefly lagging follower can be served from
the log instead of block sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from consortia.consensus.raft_messages import Entry
from consortia.types import CodecError, decode

HARD_KEY = "raft/hard"
SNAP_KEY = "raft/snap"
ENTRY_PREFIX = "raft/log/"


class RaftError(ValueError):
    """Base of the Raft engine's errors."""


class RaftStateError(RaftError):
    """The engine's own persisted state is unreadable (disk corruption, not peer input)."""


class SnapshotMeta(msgspec.Struct, array_like=True, frozen=True):
    """The last entry a compaction removed, and the last block at or before it."""

    index: int
    term: int
    height: int
    block_hash: bytes


class HardState(msgspec.Struct, array_like=True, frozen=True):
    """Figure 2's persistent currentTerm and votedFor ("" = none)."""

    term: int
    vote: str


def entry_key(index: int) -> str:
    return f"{ENTRY_PREFIX}{index:020d}"


class RaftLog:
    """Entries with indexes base.index+1 .. last_index, plus where each block height sits.

    `anchored` is False only for a node whose ledger has blocks but whose Raft state was
    never written (a new member that synced first): it does not know which block precedes
    its first entry until a snapshot or a committed block in its log tells it.
    """

    def __init__(self, snap: SnapshotMeta, anchored: bool = True) -> None:
        self.snap = snap
        self.base = snap
        self.anchored = anchored
        self._entries: list[Entry] = []
        self._heights: dict[int, int] = {}  # block height -> index

    # ---- reading -------------------------------------------------------------------------
    @property
    def last_index(self) -> int:
        return self.base.index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.base.term

    @property
    def persisted_len(self) -> int:
        """Entries the persisted log holds (those after `snap`)."""
        return self.last_index - self.snap.index

    def term_at(self, index: int) -> int | None:
        """The entry's term, or None when the index is before `base` or past the end."""
        if index == self.base.index:
            return self.base.term
        if self.base.index < index <= self.last_index:
            return self._entries[index - self.base.index - 1].term
        return None

    def entry(self, index: int) -> Entry:
        """Raises IndexError unless base.index < index <= last_index."""
        if not self.base.index < index <= self.last_index:
            raise IndexError(index)
        return self._entries[index - self.base.index - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries lo..hi inclusive, clipped to what memory holds."""
        lo = max(lo, self.base.index + 1)
        hi = min(hi, self.last_index)
        return self._entries[lo - self.base.index - 1 : hi - self.base.index]

    def index_of_height(self, height: int) -> int | None:
        return self._heights.get(height)

    def block_at_or_before(self, index: int) -> tuple[int, bytes] | None:
        """(height, hash) of the last block at an index <= `index`; None if unknown."""
        i = min(index, self.last_index)
        while i > self.base.index:
            block = self._entries[i - self.base.index - 1].block
            if block is not None:
                return block.header.height, block.hash
            i -= 1
        if i == self.base.index and self.anchored:
            return self.base.height, self.base.block_hash
        return None

    def last_block(self) -> tuple[int, bytes] | None:
        return self.block_at_or_before(self.last_index)

    # ---- changing ------------------------------------------------------------------------
    def append(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            self._entries.append(e)
            if e.block is not None:
                self._heights[e.block.header.height] = self.last_index

    def truncate_after(self, index: int) -> list[int]:
        """Drop entries after `index` (>= snap.index); returns the dropped indexes."""
        if index < self.snap.index:
            raise ValueError("cannot truncate compacted entries")
        dropped = list(range(index + 1, self.last_index + 1))
        for _ in dropped:
            block = self._entries.pop().block
            if block is not None:
                self._heights.pop(block.header.height, None)
        return dropped

    def compact(self, index: int) -> list[int]:
        """Move `snap` up to `index` (a block entry); returns the indexes no longer persisted."""
        term = self.term_at(index)
        block = self.block_at_or_before(index)
        if index <= self.snap.index or term is None or block is None:
            raise ValueError(f"cannot compact to {index}")
        removed = list(range(self.snap.index + 1, index + 1))
        self.snap = SnapshotMeta(index, term, block[0], block[1])
        self.anchored = True
        return removed

    def trim(self, retain: int) -> None:
        """Forget in-memory entries so at most `retain` of them precede `snap`."""
        new_base = self.snap.index - retain
        if new_base <= self.base.index:
            return
        term = self.term_at(new_base)
        block = self.block_at_or_before(new_base)
        if term is None or block is None:
            return
        drop = new_base - self.base.index
        for e in self._entries[:drop]:
            if e.block is not None:
                self._heights.pop(e.block.header.height, None)
        del self._entries[:drop]
        self.base = SnapshotMeta(new_base, term, block[0], block[1])

    def reset(self, snap: SnapshotMeta) -> list[int]:
        """Discard the whole log for a snapshot (§7); returns the indexes no longer persisted."""
        removed = list(range(self.snap.index + 1, self.last_index + 1))
        self._entries.clear()
        self._heights.clear()
        self.snap = self.base = snap
        self.anchored = True
        return removed

    def replace_snapshot(self, snap: SnapshotMeta) -> list[int]:
        """Install a snapshot whose last entry this log already holds: keep what follows (§7)."""
        removed = list(range(self.snap.index + 1, snap.index + 1))
        drop = snap.index - self.base.index
        for e in self._entries[:drop]:
            if e.block is not None:
                self._heights.pop(e.block.header.height, None)
        del self._entries[:drop]
        self.snap = self.base = snap
        self.anchored = True
        return removed


def load_state(
    persisted: Mapping[str, bytes], height: int, head: bytes
) -> tuple[HardState, RaftLog, list[str]]:
    """Rebuild term, vote and log from what the engine persisted; also the stale keys.

    Entries must run on from the snapshot without a gap. Entry keys at or before the
    snapshot, or after a gap, are leftovers of an interrupted compaction or truncation:
    they are returned so the engine deletes them. Raises RaftStateError if a persisted
    value does not decode.
    """
    try:
        hard = decode(persisted[HARD_KEY], HardState) if HARD_KEY in persisted else HardState(0, "")
        if SNAP_KEY in persisted:
            log = RaftLog(decode(persisted[SNAP_KEY], SnapshotMeta))
        else:
            # Never compacted: index 0 is the ledger's head only if the ledger is empty.
            log = RaftLog(SnapshotMeta(0, 0, height, head), anchored=height == 0)
        by_index: dict[int, bytes] = {}
        for key, value in persisted.items():
            if key.startswith(ENTRY_PREFIX):
                by_index[int(key[len(ENTRY_PREFIX) :])] = value
        i = log.snap.index + 1
        while i in by_index:
            log.append([decode(by_index.pop(i), Entry)])
            i += 1
    except (CodecError, ValueError) as exc:
        raise RaftStateError(f"persisted raft state is unreadable: {exc}") from exc
    if hard.term < 0 or log.snap.index < 0:
        raise RaftStateError("persisted raft state has negative numbers")
    return hard, log, [entry_key(i) for i in sorted(by_index)]
