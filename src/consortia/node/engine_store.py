"""Durable storage for a consensus engine's own state (term, vote, log, view).

A small LMDB environment beside the ledger; every `put` is synchronous, so a Persist action
is on disk before the driver performs the next action.
"""

from __future__ import annotations

from pathlib import Path

import lmdb


class EngineStore:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=1 << 32, subdir=True, sync=True, metasync=True)

    def load(self) -> dict[str, bytes]:
        with self._env.begin() as txn:
            return {bytes(k).decode(): bytes(v) for k, v in txn.cursor()}

    def put(self, key: str, value: bytes | None) -> None:
        """Write `value` under `key` (delete it for None), durably."""
        self.put_many([(key, value)])

    def put_many(self, items: list[tuple[str, bytes | None]]) -> None:
        """Write (or delete, for None) every item in order, in one durable transaction: the
        engine often persists several keys in one step, and each sync costs a disk flush."""
        with self._env.begin(write=True) as txn:
            for key, value in items:
                if value is None:
                    txn.delete(key.encode())
                else:
                    txn.put(key.encode(), value)

    def clear(self) -> None:
        with self._env.begin(write=True) as txn:
            txn.drop(self._env.open_db(), delete=False)

    def close(self) -> None:
        self._env.close()
