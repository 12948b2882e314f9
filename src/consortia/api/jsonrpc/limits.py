"""How much one JSON-RPC client may ask of a node; past a limit the answer is -32005."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RpcLimits:
    log_block_range_max: int = 5_000  # blocks one eth_getLogs / eth_getFilterLogs may span
    log_results_max: int = 10_000  # logs one query may answer
    filters_max: int = 1_000  # polled filters per node
    filter_idle_s: float = 300.0  # a filter not polled for this long is dropped (as geth)
    subscriptions_max: int = 100  # eth_subscribe subscriptions per WebSocket connection
    offload_max: int = 2  # EVM calls and log scans running at once, off the event loop
