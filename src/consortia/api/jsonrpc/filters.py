"""Polled filters (eth_newFilter, eth_newBlockFilter, eth_getFilterChanges): in memory, per node.

A filter remembers the next height it has not reported yet; each poll reports what was
committed since and moves on. A node keeps a bounded number of filters, and drops a filter
not polled for a while (limits.RpcLimits), as geth drops them after five minutes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from consortia.api.jsonrpc.codec import LIMIT_EXCEEDED, SERVER_ERROR, RpcError
from consortia.api.jsonrpc.logs import LogQuery


@dataclass(slots=True)
class Filter:
    """A block filter (query None) or a log filter."""

    query: LogQuery | None
    next_height: int  # the first height not reported yet
    last_poll: float


class FilterRegistry:
    def __init__(
        self,
        limit: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.idle_s, self.clock = limit, idle_s, clock
        self._filters: dict[str, Filter] = {}

    def __len__(self) -> int:
        return len(self._filters)

    def install(self, query: LogQuery | None, next_height: int) -> str:
        """A new filter's id. Raises RpcError (LIMIT_EXCEEDED) when too many exist."""
        self.expire()
        if len(self._filters) >= self.limit:
            raise RpcError(LIMIT_EXCEEDED, f"too many filters: at most {self.limit}; uninstall some")
        filter_id = "0x" + secrets.token_hex(16)
        self._filters[filter_id] = Filter(query, next_height, self.clock())
        return filter_id

    def get(self, filter_id: object) -> Filter:
        """The filter, marked as just polled. Raises RpcError when it does not exist (any more)."""
        self.expire()
        found = self._filters.get(filter_id) if isinstance(filter_id, str) else None
        if found is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        found.last_poll = self.clock()
        return found

    def uninstall(self, filter_id: object) -> bool:
        return isinstance(filter_id, str) and self._filters.pop(filter_id, None) is not None

    def expire(self) -> None:
        oldest = self.clock() - self.idle_s
        for filter_id in [k for k, f in self._filters.items() if f.last_poll < oldest]:
            del self._filters[filter_id]
