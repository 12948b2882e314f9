"""Which transaction ids are committed, answered from memory on the admission hot path.

Replay protection asks "is this id already committed?" for every transaction, at admission
and again when a block executes. The ledger's tx-id index answers exactly, but each question
is an LMDB read transaction. `CommittedTxIds` answers from memory instead:

- a bounded set of the most recently committed ids answers "yes" for recent replays;
- a Bloom filter over every committed id (filled from the ledger's index at start-up, then
  from each committed block) answers "no" for almost every new id, with no false negatives;
- the rare id the filter cannot rule out is looked up in the ledger.

So every answer is exact (the executor stays deterministic) and the ledger is read only for
false positives (about 1 in 400) and replays older than the recent set.

Writes come from the node's single commit thread, after `Ledger.commit` returned; reads may
come from the event loop meanwhile. A reader that misses an id being added still finds the
transaction in the mempool, which forgets it only after this set has learnt it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from consortia.crypto import sha256

RECENT_MAX = 65_536
BLOOM_FIRST_CAPACITY = 1 << 16
BLOOM_BITS_PER_ID = 16  # with 4 probes: ~0.24% false positives per layer
_PROBES = 4
_ID_BYTES = 32


class _BloomLayer:
    """A fixed-size Bloom filter over 32-byte hashes.

    The ids are already uniform hashes, so the probe positions are slices of the id itself
    rather than fresh hashes of it.
    """

    __slots__ = ("_bits", "_mask", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        size_bits = 1 << max(3, (capacity * BLOOM_BITS_PER_ID - 1).bit_length())
        self._bits = bytearray(size_bits >> 3)
        self._mask = size_bits - 1
        self.capacity = capacity
        self.count = 0

    def add(self, key: int) -> None:
        bits, mask = self._bits, self._mask
        for _ in range(_PROBES):
            pos = key & mask
            bits[pos >> 3] |= 1 << (pos & 7)
            key >>= 32
        self.count += 1

    def __contains__(self, key: int) -> bool:
        bits, mask = self._bits, self._mask
        for _ in range(_PROBES):
            pos = key & mask
            if not bits[pos >> 3] & (1 << (pos & 7)):
                return False
            key >>= 32
        return True


def _probe_key(tx_id: bytes) -> int:
    if len(tx_id) != _ID_BYTES:  # not a hash: spread it like one
        tx_id = sha256(tx_id)
    return int.from_bytes(tx_id[: 4 * _PROBES], "little")


class CommittedTxIds:
    """Exact "is this tx id committed?" answers, mostly without touching the ledger.

    `lookup` is the ledger's exact answer (e.g. `Ledger.has_tx`). Layers of Bloom filter are
    added as ids accumulate (each twice the capacity of the last), so memory stays near
    2 bytes per committed id plus the recent set.
    """

    def __init__(
        self, lookup: Callable[[bytes], bool], known: Iterable[bytes] = (), recent_max: int = RECENT_MAX
    ) -> None:
        self._lookup = lookup
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._recent_max = max(1, recent_max)
        self._layers: list[_BloomLayer] = [_BloomLayer(BLOOM_FIRST_CAPACITY)]
        self.ledger_lookups = 0  # how often the ledger had to answer (false positives, old replays)
        for tx_id in known:
            self._add_to_filter(tx_id)

    def __contains__(self, tx_id: bytes) -> bool:
        if tx_id in self._recent:
            return True
        key = _probe_key(tx_id)
        for layer in self._layers:
            if key in layer:
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
        layer.add(_probe_key(tx_id))

    @property
    def filter_bytes(self) -> int:
        return sum(len(layer._bits) for layer in self._layers)
