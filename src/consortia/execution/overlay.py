"""Speculative state: uncommitted writes layered over a committed (or speculative) state.

Overlays stack: a block overlay over committed state, a transaction overlay over the block
overlay, and one more per cross-contract call. A child either merges its writes into its
parent (success) or is discarded (rollback), so a failed transaction or call leaves nothing
behind. Consensus engines with forks execute candidate blocks on overlays and drop the
losing branches; pipelined engines execute a proposal before its parent is committed.

An overlay never copies its base: reads fall through layer by layer.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from consortia.execution.errors import OverlayClosed
from consortia.ledger.interface import StateReader, Write

_MISSING = object()
# Write(...) runs the named tuple's Python-level constructor; this builds the same tuple
# (a transfer makes two per transaction).
_new_tuple = tuple.__new__


class Overlay:
    """A StateReader holding writes (None = delete) on top of `base`."""

    __slots__ = ("_base", "_closed", "_parent", "_sorted", "_writes")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._parent: Overlay | None = base if isinstance(base, Overlay) else None
        self._writes: dict[bytes, bytes | None] = {}
        self._sorted: list[bytes] | None = []  # sorted write keys; None = stale
        self._closed = False

    @property
    def base(self) -> StateReader:
        return self._base

    def get(self, key: bytes) -> bytes | None:
        """Raises OverlayClosed after merge_into_parent or discard (of this overlay or one
        it reads through)."""
        # A loop rather than a call per layer: a transaction's read falls through its own
        # overlay and the block's before it reaches the committed state.
        layer = self
        while True:
            if layer._closed:
                raise OverlayClosed("overlay used after merge or discard")
            value = layer._writes.get(key, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[return-value]
            parent = layer._parent
            if parent is None:
                return layer._base.get(key)
            layer = parent

    def put(self, key: bytes, value: bytes) -> None:
        """Raises OverlayClosed after merge_into_parent or discard."""
        self._set(key, value)

    def delete(self, key: bytes) -> None:
        """Hide `key` (whether or not the base holds it). Raises OverlayClosed."""
        self._set(key, None)

    def _set(self, key: bytes, value: bytes | None) -> None:
        if self._closed:
            raise OverlayClosed("overlay used after merge or discard")
        writes = self._writes
        if key not in writes:
            self._sorted = None
        writes[key] = value

    def _sorted_keys(self) -> list[bytes]:
        if self._sorted is None:
            self._sorted = sorted(self._writes)
        return self._sorted

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Live keys in [start, end) in ascending order, overlay writes shadowing the base.

        The overlay's own writes are captured when the scan starts. Raises OverlayClosed.
        """
        if self._closed:
            raise OverlayClosed("overlay used after merge or discard")
        keys = self._sorted_keys()
        lo = bisect_left(keys, start)
        hi = len(keys) if end is None else bisect_left(keys, end)
        writes = self._writes
        mine = [(k, writes[k]) for k in keys[lo:hi]] if lo < hi else []
        return _merge(mine, self._base.scan(start, end))

    def writes(self) -> list[tuple[bytes, bytes | None]]:
        """This overlay's own writes, sorted by key (None = delete)."""
        writes = self._writes
        return [(k, writes[k]) for k in self._sorted_keys()]

    def child(self) -> Overlay:
        """A nested overlay (one transaction, or one cross-contract call) over this one."""
        if self._closed:
            raise OverlayClosed("overlay used after merge or discard")
        return Overlay(self)

    def merge_into_parent(self) -> None:
        """Move this overlay's writes into the overlay it was made over, and close it.

        Raises OverlayClosed if already closed, or if the base is not an Overlay.
        """
        parent = self._parent
        if self._closed or parent is None:
            raise OverlayClosed("only an open child overlay can merge into its parent")
        if parent._closed:
            raise OverlayClosed("parent overlay is closed")
        pw, mine = parent._writes, self._writes
        if parent._sorted is not None and not mine.keys() <= pw.keys():
            parent._sorted = None
        pw.update(mine)
        self._close()

    def merge_writes(self, tx_index: int) -> list[Write]:
        """`merge_into_parent`, returning this overlay's writes as those of transaction
        `tx_index` of a block, sorted by key. Raises OverlayClosed as merge_into_parent."""
        items = sorted(self._writes.items())  # keys are unique: values are never compared
        self.merge_into_parent()
        out = []
        for key, value in items:  # a loop, not a comprehension: no function per call
            out.append(_new_tuple(Write, (key, value, tx_index)))
        return out

    def put_writes(self, changes: list[tuple[bytes, bytes]], tx_index: int) -> list[Write]:
        """Put `changes` (key, value), sorted by key, as the writes of transaction `tx_index`
        of a block, and return them as its Writes. Raises OverlayClosed."""
        if self._closed:
            raise OverlayClosed("overlay used after merge or discard")
        writes = self._writes
        out = []
        for key, value in changes:
            if key not in writes:
                self._sorted = None
            writes[key] = value
            out.append(_new_tuple(Write, (key, value, tx_index)))
        return out

    def discard(self) -> None:
        """Drop every write of this overlay and close it."""
        self._close()

    def _close(self) -> None:
        self._writes = {}
        self._sorted = []
        self._closed = True


def _merge(
    mine: list[tuple[bytes, bytes | None]], theirs: Iterator[tuple[bytes, bytes]]
) -> Iterator[tuple[bytes, bytes]]:
    i, n = 0, len(mine)
    for key, value in theirs:
        while i < n and mine[i][0] < key:
            k, v = mine[i]
            i += 1
            if v is not None:
                yield k, v
        if i < n and mine[i][0] == key:
            k, v = mine[i]
            i += 1
            if v is not None:
                yield k, v
            continue
        yield key, value
    while i < n:
        k, v = mine[i]
        i += 1
        if v is not None:
            yield k, v
