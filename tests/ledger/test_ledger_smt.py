"""Sparse Merkle tree: the root and the stored nodes depend only on the final set of keys."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_kit import MemoryNodes

from consortia.crypto import ZERO_HASH, sha256
from consortia.ledger import (
    InvalidWrite,
    LedgerCorrupt,
    SmtUpdate,
    SparseMerkleTree,
    StateProof,
    verify_state_proof,
)
from consortia.ledger.proofs import bit_at, inner_hash, leaf_hash
from consortia.ledger.smt import node_key

Changes = dict[bytes, bytes | None]


def reference_root(entries: dict[bytes, bytes], depth: int = 0) -> bytes:
    """The root by definition: split on each bit, a lone key is a leaf."""
    if not entries:
        return ZERO_HASH
    if len(entries) == 1:
        ((kh, vh),) = entries.items()
        return leaf_hash(kh, vh)
    left = {k: v for k, v in entries.items() if not bit_at(k, depth)}
    right = {k: v for k, v in entries.items() if bit_at(k, depth)}
    return inner_hash(reference_root(left, depth + 1), reference_root(right, depth + 1))


def reference_nodes(entries: dict[bytes, bytes], depth: int = 0, prefix: int = 0) -> dict[bytes, bytes]:
    """Every stored node by definition (position key -> preimage), built top-down."""
    if not entries:
        return {}
    here = node_key(depth, prefix)
    if len(entries) == 1:
        ((kh, vh),) = entries.items()
        return {here: b"\x00" + kh + vh}
    left = {k: v for k, v in entries.items() if not bit_at(k, depth)}
    right = {k: v for k, v in entries.items() if bit_at(k, depth)}
    nodes = reference_nodes(left, depth + 1, prefix << 1)
    nodes.update(reference_nodes(right, depth + 1, (prefix << 1) | 1))
    hashes = [nodes.get(node_key(depth + 1, (prefix << 1) | b)) for b in (0, 1)]
    nodes[here] = b"\x01" + b"".join(ZERO_HASH if n is None else sha256(n) for n in hashes)
    return nodes


def apply_batch(tree: SparseMerkleTree, store: MemoryNodes, changes: Changes) -> bytes:
    update = tree.prepare(changes, store.get)
    store.apply(update)
    tree.committed(update)
    return update.root


def fresh(entries: dict[bytes, bytes]) -> MemoryNodes:
    store = MemoryNodes()
    apply_batch(SparseMerkleTree(), store, dict(entries))
    return store


KEYS = [sha256(b"k%d" % i) for i in range(48)]
VALUES = [sha256(b"v%d" % i) for i in range(4)]

batch = st.dictionaries(st.sampled_from(KEYS), st.none() | st.sampled_from(VALUES), max_size=16)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(batch, max_size=12), cache=st.sampled_from([0, 4, 1 << 10]))
def test_any_history_gives_the_tree_built_fresh_from_the_final_set(
    batches: list[Changes], cache: int
) -> None:
    tree, store = SparseMerkleTree(cache_nodes_max=cache), MemoryNodes()
    final: dict[bytes, bytes] = {}
    root = ZERO_HASH
    for changes in batches:
        root = apply_batch(tree, store, changes)
        for kh, vh in changes.items():
            if vh is None:
                final.pop(kh, None)
            else:
                final[kh] = vh
        assert root == reference_root(final)
    assert store.nodes == fresh(final).nodes  # no stale node left behind
    assert tree.root(store.get) == root


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(st.sampled_from(KEYS), min_size=1), seed=st.integers(0, 2**32))
def test_insertion_order_and_batching_do_not_matter(keys: set[bytes], seed: int) -> None:
    entries = {k: VALUES[i % 4] for i, k in enumerate(sorted(keys))}
    order = sorted(entries)
    random.Random(seed).shuffle(order)
    tree, store = SparseMerkleTree(), MemoryNodes()
    for kh in order:  # one key per batch
        apply_batch(tree, store, {kh: entries[kh]})
    assert store.nodes == fresh(entries).nodes
    assert tree.root(store.get) == reference_root(entries)


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(st.sampled_from(KEYS), min_size=2), data=st.data())
def test_delete_then_reinsert_returns_to_the_same_root(keys: set[bytes], data: st.DataObject) -> None:
    entries = {k: VALUES[0] for k in keys}
    tree, store = SparseMerkleTree(), MemoryNodes()
    root = apply_batch(tree, store, dict(entries))
    removed = data.draw(st.sets(st.sampled_from(sorted(keys)), min_size=1))
    apply_batch(tree, store, dict.fromkeys(removed))
    assert store.nodes == fresh({k: v for k, v in entries.items() if k not in removed}).nodes
    assert apply_batch(tree, store, {k: entries[k] for k in removed}) == root
    assert store.nodes == fresh(entries).nodes


@pytest.mark.parametrize("cache", [0, 64, 1 << 16])
def test_large_random_batches_store_exactly_the_nodes_of_the_definition(cache: int) -> None:
    """Batches as blocks make them (hundreds of keys, updates, inserts and deletes) leave
    the very nodes the definition gives, both applied one by one and chained on overlays."""
    rng = random.Random(cache)
    universe = [sha256(b"key%d" % i) for i in range(600)]
    tree, store = SparseMerkleTree(cache_nodes_max=cache), MemoryNodes()
    final: dict[bytes, bytes] = {}
    pending: list[SmtUpdate] = []
    for n in range(24):
        changes: Changes = {}
        for kh in rng.sample(universe, rng.choice([1, 2, 40, 250])):
            changes[kh] = None if rng.random() < 0.15 else sha256(rng.randbytes(8))
        overlay: dict[bytes, bytes | None] = {}
        for update in pending:
            overlay.update(update.nodes)
        update = tree.prepare(changes, store.get, overlay if pending else None)
        assert update.deletes or None not in update.nodes.values()  # a promise the ledger relies on
        pending.append(update)
        for kh, vh in changes.items():
            if vh is None:
                final.pop(kh, None)
            else:
                final[kh] = vh
        assert update.root == reference_root(final)
        if n % 3 != 0:  # sometimes leave a batch uncommitted for the next to build on
            for done in pending:
                store.apply(done)
                tree.committed(done)
            pending = []
            assert store.nodes == reference_nodes(final)
    for done in pending:
        store.apply(done)
        tree.committed(done)
    assert store.nodes == reference_nodes(final)


def test_reference_nodes_agree_with_the_reference_root() -> None:
    entries = {KEYS[i]: VALUES[i % 4] for i in range(30)}
    nodes = reference_nodes(entries)
    assert sha256(nodes[node_key(0, 0)]) == reference_root(entries)


def test_empty_and_single_key_roots() -> None:
    tree, store = SparseMerkleTree(), MemoryNodes()
    assert tree.root(store.get) == ZERO_HASH
    root = apply_batch(tree, store, {KEYS[0]: VALUES[0]})
    assert root == leaf_hash(KEYS[0], VALUES[0])  # a lone leaf sits at the root
    assert list(store.nodes) == [node_key(0, 0)]
    assert apply_batch(tree, store, {KEYS[0]: None}) == ZERO_HASH
    assert store.nodes == {}
    # Deleting an absent key changes nothing.
    assert apply_batch(tree, store, {KEYS[1]: None}) == ZERO_HASH


def test_depth_is_logarithmic() -> None:
    entries = {sha256(b"%d" % i): VALUES[0] for i in range(2000)}
    store = fresh(entries)
    depths = [int.from_bytes(k[-2:], "big") for k, node in store.nodes.items() if node[0] == 0]
    assert len(depths) == 2000
    assert max(depths) < 32 and sum(depths) / len(depths) < 14


def test_keys_sharing_255_bits_sit_at_depth_256() -> None:
    a = bytes(31) + b"\x00"
    b = bytes(31) + b"\x01"
    c = b"\x80" + bytes(31)
    entries = {a: VALUES[0], b: VALUES[1], c: VALUES[2]}
    tree, store = SparseMerkleTree(), MemoryNodes()
    root = apply_batch(tree, store, dict(entries))
    assert root == reference_root(entries)
    assert node_key(256, 0) in store.nodes and node_key(256, 1) in store.nodes
    siblings, end = tree.prove_path(b, store.get)
    assert len(siblings) == 256 and end == b"\x00" + b + VALUES[1]
    apply_batch(tree, store, {a: None})
    assert store.nodes == fresh({b: VALUES[1], c: VALUES[2]}).nodes


def test_prepare_writes_nothing_until_applied() -> None:
    tree, store = SparseMerkleTree(), MemoryNodes()
    apply_batch(tree, store, {k: VALUES[0] for k in KEYS[:10]})
    before = dict(store.nodes)
    update = tree.prepare({k: VALUES[1] for k in KEYS[5:20]}, store.get)
    assert store.nodes == before
    assert update.root != tree.root(store.get)


def test_overlay_builds_on_an_uncommitted_batch() -> None:
    tree, store = SparseMerkleTree(), MemoryNodes()
    apply_batch(tree, store, {k: VALUES[0] for k in KEYS[:20]})
    first = tree.prepare({k: VALUES[1] for k in KEYS[10:30]}, store.get)
    second = tree.prepare({k: None for k in KEYS[:15]}, store.get, overlay=first.nodes)
    final = {k: VALUES[1] for k in KEYS[15:30]}
    assert second.root == reference_root(final)
    store.apply(first)
    tree.committed(first)
    store.apply(second)
    tree.committed(second)
    assert store.nodes == fresh(final).nodes


def test_bad_hash_lengths_and_missing_nodes_raise() -> None:
    tree, store = SparseMerkleTree(), MemoryNodes()
    with pytest.raises(InvalidWrite):
        tree.prepare({b"short": VALUES[0]}, store.get)
    with pytest.raises(InvalidWrite):
        tree.prepare({KEYS[0]: b"short"}, store.get)
    apply_batch(tree, store, {k: VALUES[0] for k in KEYS[:8]})
    tree.clear_cache()
    victim = next(k for k, node in store.nodes.items() if node[0] == 1 and k != node_key(0, 0))
    del store.nodes[victim]
    with pytest.raises(LedgerCorrupt):
        tree.prepare({k: VALUES[2] for k in KEYS[:8]}, store.get)


# ----------------------------------------------------------------- proofs


def proof_for(tree: SparseMerkleTree, store: MemoryNodes, key: bytes, value: bytes | None) -> StateProof:
    siblings, end = tree.prove_path(sha256(key), store.get)
    if end is not None and end[1:33] != sha256(key):
        return StateProof(key, value, siblings, end[1:33], end[33:])
    return StateProof(key, value, siblings)


raw_keys = st.sets(st.binary(min_size=1, max_size=6), max_size=40)


@settings(max_examples=80, deadline=None)
@given(present=raw_keys, absent=st.lists(st.binary(min_size=1, max_size=6), max_size=5))
def test_inclusion_and_absence_proofs_verify(present: set[bytes], absent: list[bytes]) -> None:
    values = {k: b"val:" + k for k in present}
    tree, store = SparseMerkleTree(), MemoryNodes()
    root = apply_batch(tree, store, {sha256(k): sha256(v) for k, v in values.items()})
    for key, value in values.items():
        proof = proof_for(tree, store, key, value)
        assert verify_state_proof(root, key, value, proof)
        assert not verify_state_proof(root, key, None, StateProof(key, None, proof.siblings))
    for key in absent:
        if key in values:
            continue
        proof = proof_for(tree, store, key, None)
        assert verify_state_proof(root, key, None, proof)
        assert not verify_state_proof(root, key, b"x", StateProof(key, b"x", proof.siblings))


@settings(max_examples=80, deadline=None)
@given(present=st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=40), data=st.data())
def test_tampered_proofs_values_and_roots_fail(present: set[bytes], data: st.DataObject) -> None:
    values = {k: b"val:" + k for k in present}
    tree, store = SparseMerkleTree(), MemoryNodes()
    root = apply_batch(tree, store, {sha256(k): sha256(v) for k, v in values.items()})
    key = data.draw(st.sampled_from(sorted(present)))
    proof = proof_for(tree, store, key, values[key])
    other_value = data.draw(st.binary(max_size=8).filter(lambda v: v != values[key]))
    assert not verify_state_proof(root, key, other_value, StateProof(key, other_value, proof.siblings))
    bad_root = bytearray(root)
    bad_root[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
    assert not verify_state_proof(bytes(bad_root), key, values[key], proof)
    if proof.siblings:
        i = data.draw(st.integers(0, len(proof.siblings) - 1))
        siblings = list(proof.siblings)
        siblings[i] = bytes(b ^ 0xFF for b in siblings[i][:1]) + siblings[i][1:]
        assert not verify_state_proof(root, key, values[key], StateProof(key, values[key], siblings))
        # Cutting the path short, or padding it, breaks it too.
        assert not verify_state_proof(root, key, values[key], StateProof(key, values[key], siblings[:-1]))
    padded = [*proof.siblings, ZERO_HASH]
    assert not verify_state_proof(root, key, values[key], StateProof(key, values[key], padded))
    # A present key cannot be shown absent.
    assert not verify_state_proof(root, key, None, StateProof(key, None, proof.siblings))
    assert not verify_state_proof(root, key, None, proof_for(tree, store, key, None))
