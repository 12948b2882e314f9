"""Which transaction ids are committed, answered from memory on the admission hot path.

Replay protection asks "is this id already committed?" for every transaction, at admission
and again when a block executes. The ledger's tx-id index answers exactly, but each question
is an LMDB read transaction. `CommittedTxIds` answers from memory instead:

- a bounded set of the most recently committed ids answers "yes" for recent replays;
- a Bloom filter over every committed id (filled from the ledger's index at start-up, then
  from each committed block) answers "no" for almost every new id, with no false negatives;
- the rare id the filter cannot rule out is looked up in the ledger.

So every answer is exact (the executor stays deterministic) and the ledger is read only for
false positives (about 1 in 250) and replays older than the recent set.

Writes come from the node's single commit thread, after `Ledger.commit` returned; reads may
come from the event loop meanwhile. A reader that misses an id being added still finds the
transaction in the mempool, which forgets it only after this set has learnt it.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable

RECENT_MAX = 65_536
BLOOM_FIRST_CAPACITY = 1 << 20  # ids per filter layer before the next (twice as large) starts
BLOOM_BITS_PER_ID = 32  # with 2 probes: ~0.4% false positives per layer, 4 MiB per million ids

# The two probe positions are read straight from an id's first 8 bytes: ids are hashes, so
# those bytes are already uniformly spread, and they are all the ledger's tx index keeps
# (`Ledger.tx_ids` yields them), so an id learnt from the index at start-up and the same id
# asked about later probe the same bits. They are the same in every process.
_PROBES = struct.Struct("<II")


def _probes(tx_id: bytes) -> tuple[int, int]:
    try:
        return _PROBES.unpack_from(tx_id)
    except struct.error:  # shorter than 8 bytes: never a real id, but answer all the same
        return _PROBES.unpack(tx_id.ljust(_PROBES.size, b"\x00"))


class _BloomLayer:
    """A fixed-size, two-probe Bloom filter (see `CommittedTxIds`)."""

    __slots__ = ("bits", "capacity", "count", "mask")

    def __init__(self, capacity: int) -> None:
        size_bits = 1 << max(3, (capacity * BLOOM_BITS_PER_ID - 1).bit_length())
        self.bits = bytearray(size_bits >> 3)
        self.mask = size_bits - 1
        self.capacity = capacity
        self.count = 0

    def add(self, first: int, second: int) -> None:
        bits, mask = self.bits, self.mask
        pos = first & mask
        bits[pos >> 3] |= 1 << (pos & 7)
        pos = second & mask
        bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1


class CommittedTxIds:
    """Exact "is this tx id committed?" answers, mostly without touching the ledger.

    `lookup` is the ledger's exact answer (e.g. `Ledger.has_tx`). Layers of Bloom filter are
    added as ids accumulate (each twice the capacity of the last): 4 MiB covers the first
    million ids, plus the recent set (a few MiB).
    """

    def __init__(
        self,
        lookup: Callable[[bytes], bool],
        known: Iterable[bytes] = (),
        recent_max: int = RECENT_MAX,
        first_capacity: int = BLOOM_FIRST_CAPACITY,
    ) -> None:
        self._lookup = lookup
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._recent_max = max(1, recent_max)
        self._layers: list[_BloomLayer] = [_BloomLayer(max(1, first_capacity))]
        self.ledger_lookups = 0  # how often the ledger had to answer (false positives, old replays)
        for tx_id in known:
            self._add_to_filter(tx_id)

    def __contains__(self, tx_id: bytes) -> bool:
        if tx_id in self._recent:
            return True
        try:
            first, second = _PROBES.unpack_from(tx_id)  # inlined `_probes`
        except struct.error:
            first, second = _probes(tx_id)
        for layer in self._layers:  # inlined: this runs for every transaction
            bits, mask = layer.bits, layer.mask
            pos = first & mask
            if (bits[pos >> 3] >> (pos & 7)) & 1:
                pos = second & mask
                if (bits[pos >> 3] >> (pos & 7)) & 1:
                    self.ledger_lookups += 1
                    return self._lookup(tx_id)
        return False

    def add_committed(self, tx_ids: Iterable[bytes]) -> None:
        """Learn the ids of a block that is now durably committed."""
        recent = self._recent
        for tx_id in tx_ids:
            self._add_to_filter(tx_id)
            recent[tx_id] = None
        while len(recent) > self._recent_max:
            recent.popitem(last=False)

    def _add_to_filter(self, tx_id: bytes) -> None:
        layer = self._layers[-1]
        if layer.count >= layer.capacity:
            layer = _BloomLayer(layer.capacity * 2)
            self._layers.append(layer)
        layer.add(*_probes(tx_id))

    @property
    def filter_bytes(self) -> int:
        return sum(len(layer.bits) for layer in self._layers)

    @property
    def filter_layers(self) -> int:
        return len(self._layers)
