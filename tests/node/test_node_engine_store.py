"""The engine's durable store: single and batched writes, deletes, reopening."""

from __future__ import annotations

from pathlib import Path

from consortia.node.engine_store import EngineStore


def test_put_many_writes_and_deletes_in_order_and_survives_reopening(tmp_path: Path) -> None:
    store = EngineStore(tmp_path / "engine")
    store.put("view", b"1")
    store.put_many([("slot/1", b"a"), ("block/1", b"big"), ("slot/1", b"b"), ("view", None)])
    assert store.load() == {"slot/1": b"b", "block/1": b"big"}
    store.put_many([("block/1", None), ("missing", None)])  # deleting an absent key is fine
    store.close()
    reopened = EngineStore(tmp_path / "engine")
    assert reopened.load() == {"slot/1": b"b"}
    reopened.close()
