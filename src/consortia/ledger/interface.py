"""What the layers above see of state: an ordered key-value reader, and writes to apply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol


class StateReader(Protocol):
    """Read access to one version of a channel's state. Keys and values are bytes."""

    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Live keys in [start, end) in ascending byte order; end=None means unbounded."""
        ...


class Write(NamedTuple):
    """The final value a transaction left for a key (None deletes it)."""

    key: bytes
    value: bytes | None
    tx_index: int  # position of the writing transaction in its block
