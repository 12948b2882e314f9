"""Overlays behave exactly like a dict model of the state they speculate on."""

from __future__ import annotations

import pytest
from execution_harness import DictState
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.execution.errors import OverlayClosed
from consortia.execution.overlay import Overlay

keys = st.sampled_from([b"", b"a", b"aa", b"ab", b"b", b"b\x00", b"b\xff", b"c", b"\xff", b"\xff\xff"])
values = st.binary(min_size=0, max_size=4)
ops = st.lists(st.tuples(st.sampled_from(["put", "delete"]), keys, values), max_size=25)


def model_scan(model: dict[bytes, bytes], start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
    return sorted((k, v) for k, v in model.items() if k >= start and (end is None or k < end))


def apply(target: Overlay, model: dict[bytes, bytes], batch: list[tuple[str, bytes, bytes]]) -> None:
    for op, key, value in batch:
        if op == "put":
            target.put(key, value)
            model[key] = value
        else:
            target.delete(key)
            model.pop(key, None)


def check_same(view: Overlay, model: dict[bytes, bytes], bounds: list[tuple[bytes, bytes | None]]) -> None:
    for key in [b"", b"a", b"aa", b"ab", b"b", b"b\x00", b"b\xff", b"c", b"\xff", b"\xff\xff", b"zz"]:
        assert view.get(key) == model.get(key)
    for start, end in bounds:
        assert list(view.scan(start, end)) == model_scan(model, start, end)


bounds_st = st.lists(st.tuples(keys, st.one_of(st.none(), keys)), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(base_items=st.dictionaries(keys, values), block_ops=ops, tx_ops=ops, call_ops=ops, bounds=bounds_st)
def test_stacked_overlays_match_dict_model(
    base_items: dict[bytes, bytes],
    block_ops: list[tuple[str, bytes, bytes]],
    tx_ops: list[tuple[str, bytes, bytes]],
    call_ops: list[tuple[str, bytes, bytes]],
    bounds: list[tuple[bytes, bytes | None]],
) -> None:
    base = DictState()
    base.data.update(base_items)
    block = Overlay(base)
    model = dict(base_items)
    apply(block, model, block_ops)
    check_same(block, model, bounds)

    tx = block.child()
    tx_model = dict(model)
    apply(tx, tx_model, tx_ops)
    check_same(tx, tx_model, bounds)
    check_same(block, model, bounds)  # the child's writes are invisible to its parent

    call = tx.child()
    call_model = dict(tx_model)
    apply(call, call_model, call_ops)
    check_same(call, call_model, bounds)
    call.discard()  # rollback: the tx sees what it saw before the call
    check_same(tx, tx_model, bounds)

    tx.merge_into_parent()
    check_same(block, tx_model, bounds)
    assert base.data == base_items  # the committed state is never touched


@settings(max_examples=100, deadline=None)
@given(base_items=st.dictionaries(keys, values), batch=ops)
def test_writes_are_sorted_net_changes(
    base_items: dict[bytes, bytes], batch: list[tuple[str, bytes, bytes]]
) -> None:
    base = DictState()
    base.data.update(base_items)
    overlay = Overlay(base)
    expected: dict[bytes, bytes | None] = {}
    for op, key, value in batch:
        if op == "put":
            overlay.put(key, value)
            expected[key] = value
        else:
            overlay.delete(key)
            expected[key] = None
    assert overlay.writes() == sorted(expected.items())
    # Replaying the writes on the base yields the overlay's view.
    replay = dict(base_items)
    for key, maybe in overlay.writes():
        if maybe is None:
            replay.pop(key, None)
        else:
            replay[key] = maybe
    assert list(overlay.scan(b"", None)) == sorted(replay.items())


def test_scan_snapshot_ignores_later_writes_to_the_overlay() -> None:
    overlay = Overlay(DictState())
    overlay.put(b"a", b"1")
    it = overlay.scan(b"", None)
    overlay.put(b"b", b"2")
    assert list(it) == [(b"a", b"1")]


def test_closed_overlays_refuse_use() -> None:
    block = Overlay(DictState())
    tx = block.child()
    tx.put(b"k", b"v")
    tx.merge_into_parent()
    with pytest.raises(OverlayClosed):
        tx.get(b"k")
    with pytest.raises(OverlayClosed):
        tx.merge_into_parent()
    with pytest.raises(OverlayClosed):
        block.merge_into_parent()  # its base is not an overlay
    assert block.get(b"k") == b"v"
    other = block.child()
    other.discard()
    with pytest.raises(OverlayClosed):
        other.put(b"x", b"y")
    assert block.writes() == [(b"k", b"v")]
