"""A compact sparse Merkle tree over 256-bit key hashes, updated in batches.

Hashing rules are in consortia.ledger.proofs. A node is stored as its preimage, so its
hash is always sha256(node bytes):
- leaf:  0x00 || key_hash || value_hash
- inner: 0x01 || left_hash || right_hash   (a child may be the empty hash)

Nodes are stored under their position, not their hash: the path bits packed MSB-first and
zero-padded, then the depth (2 bytes, big-endian; a leaf can sit at depth 256). Path first
keeps a subtree's nodes next to each other in the store, so the nodes one key's update
rewrites share pages (measured: ~25% faster durable commits than depth-first keys). Keeping
one node per position (instead of one per version) means old roots cannot be proven, in
exchange for a store that does not grow with every block.

`prepare` computes a new root and the node writes without writing anything, so a block
can carry the root in its header before it is committed; the caller applies the writes in
its own transaction and then calls `committed` to refresh the node cache.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Mapping
from functools import cache
from operator import itemgetter
from typing import NamedTuple

from consortia.crypto import sha256
from consortia.ledger.errors import InvalidWrite, LedgerCorrupt
from consortia.ledger.proofs import EMPTY_HASH, HASH_BYTES, INNER_TAG, KEY_BITS, LEAF_TAG, bit_at

NODE_BYTES = 1 + 2 * HASH_BYTES
_MID = 1 + HASH_BYTES  # where a node's second hash starts
# sha256 of consortia.crypto, called directly in the loops below (saves a call per node).
_sha256 = hashlib.sha256
_LEAF = LEAF_TAG[0]
_INNER = INNER_TAG[0]
_TOP_BIT = KEY_BITS - 1

NodeRead = Callable[[bytes], bytes | None]
"""Reads a stored node by its position key; None when nothing is stored there."""

_Live = tuple[int, bytes, bytes]  # (key hash as int, key hash, value hash)


_DEPTH_BYTES = [d.to_bytes(2, "big") for d in range(KEY_BITS + 1)]
_PAD_BITS = [(-d) % 8 for d in range(KEY_BITS + 1)]
_PATH_BYTES = [(d + 7) >> 3 for d in range(KEY_BITS + 1)]


def node_key(depth: int, prefix: int) -> bytes:
    """Position key of the node reached by the `depth` bits of `prefix` (an int)."""
    return (prefix << _PAD_BITS[depth]).to_bytes(_PATH_BYTES[depth], "big") + _DEPTH_BYTES[depth]


_ROOT_KEY = node_key(0, 0)
# Position keys of the top levels, which every batch rewrites, are looked up rather than
# computed: 32k keys, ~1.2 MB, built once on first use.
_SHALLOW = 14


@cache
def _shallow_keys() -> list[list[bytes]]:
    return [[node_key(d, p) for p in range(1 << d)] for d in range(_SHALLOW + 1)]


def _node_hash(node: bytes | None) -> bytes:
    return EMPTY_HASH if node is None else sha256(node)


class SmtUpdate(NamedTuple):
    """The outcome of a batch: the new root and the node writes (None = delete)."""

    root: bytes
    nodes: dict[bytes, bytes | None]
    # False promises that `nodes` holds no delete, so it can be applied wholesale.
    deletes: bool = True


class SparseMerkleTree:
    """Batch updates and proof paths over nodes read through a bounded cache.

    The cache holds committed nodes only; `committed` must be called after a prepared
    update is durably written, and not otherwise. `prepare` and `committed` belong to one
    writer thread; `prove_path` and `root` may run on any thread.
    """

    def __init__(self, cache_nodes_max: int = 1 << 18) -> None:
        if cache_nodes_max < 0:
            raise ValueError("cache_nodes_max must be >= 0")
        self._cache_half = cache_nodes_max // 2
        self._shallow = _shallow_keys()
        self._young: dict[bytes, bytes] = {}
        self._old: dict[bytes, bytes] = {}
        # Per-batch state, set by prepare().
        self._read_store: NodeRead = _no_store
        self._overlay: Mapping[bytes, bytes | None] | None = None
        # Where a batch looks for a node first: the young cache generation, or nothing when
        # an overlay must be consulted before any cache.
        self._fast: dict[bytes, bytes] = {}
        self._writes: dict[bytes, bytes | None] = {}
        self._deletes = False  # whether _writes holds a None
        self._khs: list[int] = []
        self._kbs: list[bytes] = []
        self._vhs: list[bytes | None] = []

    # ---------------------------------------------------------------- public

    def root(self, read: NodeRead) -> bytes:
        """Root hash of the stored tree (read from the store, bypassing the cache)."""
        return _node_hash(_checked(read(_ROOT_KEY), 0))

    def prepare(
        self,
        changes: Mapping[bytes, bytes | None],
        read: NodeRead,
        overlay: Mapping[bytes, bytes | None] | None = None,
    ) -> SmtUpdate:
        """New root and node writes for `changes` (key hash -> value hash, None = delete).

        Writes nothing. `overlay` holds node writes not yet committed (None = deleted) that
        take precedence over the store, so a batch can build on a prepared one.
        Raises InvalidWrite for a key or value hash that is not 32 bytes, LedgerCorrupt when
        a node the tree refers to is missing or malformed.
        """
        for kh, vh in changes.items():
            if len(kh) != HASH_BYTES or (vh is not None and len(vh) != HASH_BYTES):
                raise InvalidWrite("key and value hashes must be 32 bytes")
        self._read_store = read
        self._overlay = overlay
        self._fast = self._young if overlay is None else {}
        self._writes = {}
        self._deletes = False
        self._kbs = sorted(changes)  # keys alone: sorting (key, value) pairs costs twice as much
        self._khs = [int.from_bytes(kh, "big") for kh in self._kbs]
        self._vhs = [changes[kh] for kh in self._kbs]
        try:
            old_root = self._read(_ROOT_KEY, 0)
            if not changes:
                return SmtUpdate(_node_hash(old_root), {}, False)
            new_root = self._update(0, 0, old_root, 0, len(changes))
            if new_root != old_root:
                self._writes[_ROOT_KEY] = new_root
                self._deletes |= new_root is None
            return SmtUpdate(_node_hash(new_root), self._writes, self._deletes)
        finally:
            self._read_store = _no_store
            self._overlay = None
            self._fast = {}
            self._writes = {}
            self._khs, self._kbs, self._vhs = [], [], []

    def committed(self, update: SmtUpdate) -> None:
        """Reflect a durably written update in the cache."""
        if self._cache_half == 0:
            return
        young, old = self._young, self._old
        if not update.deletes:
            # A node in young shadows any stale copy in old, which is dropped when young
            # next turns old: no need to pop each key from old.
            young.update(update.nodes)  # type: ignore[arg-type]  # no None, see SmtUpdate
            if len(young) > self._cache_half:
                self._old, self._young = young, {}
            return
        for key, node in update.nodes.items():
            old.pop(key, None)
            if node is None:
                young.pop(key, None)
            else:
                young[key] = node
        if len(young) > self._cache_half:
            self._old, self._young = young, {}

    def clear_cache(self) -> None:
        self._young, self._old = {}, {}

    def prove_path(self, k_hash: bytes, read: NodeRead) -> tuple[list[bytes], bytes | None]:
        """Siblings from the root down along k_hash's path, and the node ending it.

        The end node is a leaf (the key's own or another's) or None for an empty slot.
        Reads only through `read`, never the cache, so a proof made from one read
        transaction is consistent even while another thread commits.
        Raises LedgerCorrupt when a node the tree refers to is missing or malformed.
        """
        siblings: list[bytes] = []
        node = _checked(read(_ROOT_KEY), 0)
        depth, prefix = 0, 0
        while node is not None and node[0] == _INNER:
            b = bit_at(k_hash, depth)
            left, right = node[1 : 1 + HASH_BYTES], node[1 + HASH_BYTES :]
            siblings.append(left if b else right)
            child = right if b else left
            depth, prefix = depth + 1, (prefix << 1) | b
            if child == EMPTY_HASH:
                return siblings, None
            node = _checked(read(node_key(depth, prefix)), depth)
            if node is None:
                raise LedgerCorrupt(f"tree node missing at depth {depth}")
        return siblings, node

    # -------------------------------------------------------------- node io

    def _remember(self, key: bytes, node: bytes) -> None:
        # Two generations of plain dicts: an approximate LRU with O(1) work per access.
        if self._cache_half == 0:
            return
        self._young[key] = node
        if len(self._young) > self._cache_half:
            self._old, self._young = self._young, {}

    def _read(self, key: bytes, depth: int) -> bytes | None:
        if self._overlay is not None and key in self._overlay:
            return self._overlay[key]  # uncommitted: never cached
        node = self._young.get(key)
        if node is not None:
            return node
        node = self._old.pop(key, None)
        if node is None:
            node = _checked(self._read_store(key), depth)
            if node is None:
                return None
        self._remember(key, node)
        return node

    def _read_required(self, key: bytes, depth: int) -> bytes:
        node = None if self._overlay is not None else self._young.get(key)
        if node is None:
            node = self._read(key, depth)
            if node is None:
                raise LedgerCorrupt(f"tree node missing at depth {depth}")
        return node

    # ---------------------------------------------------------------- batch
    #
    # The walk below runs once per changed tree node (five or six per changed key in a
    # block of a thousand), so it is written for the interpreter: position keys, cache reads
    # and hashes inline, a lean path for the single-key tails of the paths.

    def _update(self, depth: int, prefix: int, stored: bytes | None, lo: int, hi: int) -> bytes | None:
        """New node at this position for the changes [lo, hi), which all lie below it.

        Records the writes for the positions below; the caller places the returned node.
        """
        if hi - lo == 1:
            return self._update_one(depth, prefix, stored, lo)
        if stored is None or stored[0] == _LEAF:
            # Nothing is stored below a leaf or an empty slot: rebuild from the keys it will hold.
            return self._fresh(depth, prefix, self._live(lo, hi, stored))
        d1, lp = depth + 1, prefix << 1
        rp = lp | 1
        mid = bisect_left(self._khs, rp << (_TOP_BIT - depth), lo, hi)
        lh, rh = stored[1:_MID], stored[_MID:]
        fast, shallow = self._fast, self._shallow
        # Per child: position key, node before and after; only for children the batch touches.
        lkey = rkey = b""
        lold = lnew = rold = rnew = None
        lchg, rchg = lo < mid, mid < hi
        if lchg:
            lkey = shallow[d1][lp] if d1 <= _SHALLOW else node_key(d1, lp)
            if lh != EMPTY_HASH:
                lold = fast.get(lkey) or self._read_required(lkey, d1)
            lnew = self._update(d1, lp, lold, lo, mid)
            lh = EMPTY_HASH if lnew is None else _sha256(lnew).digest()
        if rchg:
            rkey = shallow[d1][rp] if d1 <= _SHALLOW else node_key(d1, rp)
            if rh != EMPTY_HASH:
                rold = fast.get(rkey) or self._read_required(rkey, d1)
            rnew = self._update(d1, rp, rold, mid, hi)
            rh = EMPTY_HASH if rnew is None else _sha256(rnew).digest()

        result: bytes | None
        if rh != EMPTY_HASH and lh != EMPTY_HASH:
            result = INNER_TAG + lh + rh
        elif rh == EMPTY_HASH and lh != EMPTY_HASH:
            # A leaf left alone beside an empty sibling moves up, so the shape depends only on the keys.
            if not lchg:
                lkey = node_key(d1, lp)
                lold = lnew = self._read_required(lkey, d1)
                lchg = True
            assert lnew is not None
            if lnew[0] == _LEAF:
                result, lnew = lnew, None
            else:
                result = INNER_TAG + lh + rh
        elif lh == EMPTY_HASH and rh != EMPTY_HASH:
            if not rchg:
                rkey = node_key(d1, rp)
                rold = rnew = self._read_required(rkey, d1)
                rchg = True
            assert rnew is not None
            if rnew[0] == _LEAF:
                result, rnew = rnew, None
            else:
                result = INNER_TAG + lh + rh
        else:
            result = None
        writes = self._writes
        if lchg and lnew != lold:
            writes[lkey] = lnew
            self._deletes |= lnew is None
        if rchg and rnew != rold:
            writes[rkey] = rnew
            self._deletes |= rnew is None
        return result

    def _update_one(self, depth: int, prefix: int, node: bytes | None, i: int) -> bytes | None:
        """`_update` for the single change i: down to its slot, rehashed on the way back up.

        Same rules as `_update`; most of a batch's paths end here. Returns `node` itself
        when nothing changes. Recursion rather than a loop over a path list: no object is
        allocated per level, so a batch triggers fewer garbage collections.
        """
        if node is None or node[0] == _LEAF:
            kb, vh = self._kbs[i], self._vhs[i]
            if node is not None and node[1:_MID] != kb:
                # Another key's leaf holds the slot: the change moves in beside it (or, as a
                # delete of an absent key, changes nothing).
                return node if vh is None else self._fresh(depth, prefix, self._live(i, i + 1, node))
            new = None if vh is None else LEAF_TAG + kb + vh
            return node if new == node else new
        b = (self._khs[i] >> (_TOP_BIT - depth)) & 1
        d, p = depth + 1, (prefix << 1) | b
        key = self._shallow[d][p] if d <= _SHALLOW else node_key(d, p)
        if b:
            sibling, child_hash = node[1:_MID], node[_MID:]
        else:
            child_hash, sibling = node[1:_MID], node[_MID:]
        old = None if child_hash == EMPTY_HASH else self._fast.get(key) or self._read_required(key, d)
        new = self._update_one(d, p, old, i)
        if new is old:
            return node  # nothing changed below, so nothing changes here
        if sibling != EMPTY_HASH and new is not None:  # the common case
            self._writes[key] = new
            h = _sha256(new).digest()
            return INNER_TAG + sibling + h if b else INNER_TAG + h + sibling
        # `below` stays at this position; `up` replaces `node`.
        below: bytes | None
        up: bytes | None
        if sibling == EMPTY_HASH:
            if new is None or new[0] == _LEAF:
                below, up = None, new  # a lone leaf (or nothing) moves up
            else:
                h = _sha256(new).digest()
                below, up = new, INNER_TAG + (EMPTY_HASH + h if b else h + EMPTY_HASH)
        else:  # the subtree below emptied
            sibling_key = node_key(d, p ^ 1)
            other = self._read_required(sibling_key, d)
            below = None
            if other[0] == _LEAF:
                self._writes[sibling_key] = None
                self._deletes = True
                up = other  # the sibling leaf is now alone: it moves up
            else:
                up = INNER_TAG + (sibling + EMPTY_HASH if b else EMPTY_HASH + sibling)
        if below != old:
            self._writes[key] = below
            self._deletes |= below is None
        return up

    def _live(self, lo: int, hi: int, stored_leaf: bytes | None) -> list[_Live]:
        """Keys that will live in a subtree that holds at most `stored_leaf` today."""
        live = [(self._khs[i], self._kbs[i], vh) for i in range(lo, hi) if (vh := self._vhs[i]) is not None]
        if stored_leaf is not None:
            old_kb = stored_leaf[1:_MID]
            old_ki = int.from_bytes(old_kb, "big")
            j = bisect_left(self._khs, old_ki, lo, hi)
            if j == hi or self._khs[j] != old_ki:  # the batch does not touch the old key
                at = bisect_left(live, old_ki, key=itemgetter(0))
                live.insert(at, (old_ki, old_kb, stored_leaf[_MID:]))
        return live

    def _fresh(self, depth: int, prefix: int, live: list[_Live]) -> bytes | None:
        """Build a subtree over `live` below a position where nothing is stored."""
        if not live:
            return None
        if len(live) == 1:
            _, kb, vh = live[0]
            return LEAF_TAG + kb + vh
        d1, lp, rp = depth + 1, prefix << 1, (prefix << 1) | 1
        mid = bisect_left(live, rp << (_TOP_BIT - depth), key=itemgetter(0))
        left = self._fresh(d1, lp, live[:mid])
        right = self._fresh(d1, rp, live[mid:])
        if left is not None:
            self._writes[node_key(d1, lp)] = left
        if right is not None:
            self._writes[node_key(d1, rp)] = right
        return INNER_TAG + _node_hash(left) + _node_hash(right)


def _checked(node: bytes | None, depth: int) -> bytes | None:
    if node is None:
        return None
    if len(node) != NODE_BYTES or node[0] not in (_LEAF, _INNER):
        raise LedgerCorrupt(f"malformed tree node at depth {depth}")
    return bytes(node)


def _no_store(key: bytes) -> bytes | None:
    raise RuntimeError("tree read outside a batch")
