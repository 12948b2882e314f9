"""What one run measured, and the arithmetic that turns raw records into it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

LATENCY_PCTS = (50, 95, 99)


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct * len(sorted_values) / 100))
    return sorted_values[rank - 1]


@dataclass
class NodeUsage:
    name: str
    cpu_s: float | None  # CPU seconds the node used during the run (all threads)
    cpu_pct: float | None  # of one core, over the run's wall time
    rss_peak_mib: float | None  # VmHWM: the highest resident set since the node started
    rss_end_mib: float | None
    rss_anon_end_mib: float | None  # of rss_end: heap and stacks, not memory-mapped files
    disk_bytes: int | None  # data directory size after the run
    disk_growth_bytes: int | None  # how much the data directory grew during the run


@dataclass
class TimePoint:
    t_s: int  # seconds since the load started
    submitted: int
    committed: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


@dataclass
class RunResult:
    """One fixed-rate run. `tps` is Caliper's: committed / (last commit - first submission)."""

    workload: str
    consensus: str
    nodes: int
    offered_rate: float
    duration_s: float
    workers: int
    submitted: int
    committed: int
    rejected: int
    lost: int
    tps: float
    latency_ms: dict[str, float | None]  # p50, p95, p99, max, mean
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    read_only: bool = False
    blocks: int = 0
    block_txs_mean: float = 0.0
    block_bytes_mean: float = 0.0
    tx_bytes_mean: float = 0.0
    disk_per_tx_bytes: float | None = None  # per node: data dir growth / committed
    disk_to_raw_ratio: float | None = None  # per node: data dir growth / raw tx bytes committed
    nodes_usage: list[NodeUsage] = field(default_factory=list)
    client_cpu_s: float | None = None  # the load generator's processes, together
    # committed / CPU seconds of all nodes together: what a dedicated core would sustain if
    # the work spread over cores perfectly; far less sensitive to a shared host than TPS.
    txs_per_node_cpu_s: float | None = None
    send_lag_ms_max: float = 0.0  # how late the generator sent its latest batch (open loop health)
    drain_s: float = 0.0  # from the last submission until every transaction was found
    failed_receipts_sampled: int = 0  # committed but failed in execution, among those sampled
    receipts_sampled: int = 0
    commit_observed_via: str = "websocket"
    # p50/p99 per node the transactions were submitted to: a node that commits late shows here
    latency_by_node: dict[str, dict[str, float | None]] = field(default_factory=dict)
    timeline: list[TimePoint] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    load_average: list[float] = field(default_factory=list)
    # The host's CPU time over the run, load and drain (busy/idle/steal %): steal is CPU the
    # hypervisor gave elsewhere, which slows every process without showing in their CPU time.
    host_cpu: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON form: everything but the raw latency list."""
        out = asdict(self)
        out.pop("latencies_ms")
        for k in ("p50", "p95", "p99"):
            out[f"latency_{k}_ms"] = self.latency_ms.get(k)
        out["latency_max_ms"] = self.latency_ms.get("max")
        out["histogram"] = histogram(self.latencies_ms)
        return out

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.lost == 0


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    xs = sorted(latencies)
    out: dict[str, float | None] = {f"p{p}": _r(percentile(xs, p)) for p in LATENCY_PCTS}
    out["max"] = _r(xs[-1]) if xs else None
    out["mean"] = _r(sum(xs) / len(xs)) if xs else None
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def histogram(latencies: list[float], bins: int = 30) -> list[tuple[float, int]]:
    """(bin lower edge ms, count) over [0, p99.9], the tail folded into the last bin."""
    if not latencies:
        return []
    xs = sorted(latencies)
    top = max(1.0, percentile(xs, 99.9) or 1.0)
    width = top / bins
    counts = [0] * bins
    for x in xs:
        counts[min(bins - 1, int(x / width))] += 1
    return [(round(i * width, 1), c) for i, c in enumerate(counts)]


def timeline(
    t0: float, submits: list[float], commits: list[tuple[float, float]], horizon_s: int
) -> list[TimePoint]:
    """Per second since t0: submissions (by due time), commits and their latency percentiles.

    `commits` holds (commit time, latency ms) per committed transaction.
    """
    n = max(1, horizon_s)
    sub = [0] * n
    com: list[list[float]] = [[] for _ in range(n)]
    for t in submits:
        sub[min(n - 1, max(0, int(t - t0)))] += 1
    for t, lat in commits:
        com[min(n - 1, max(0, int(t - t0)))].append(lat)
    out = []
    for i in range(n):
        lats = sorted(com[i])
        out.append(TimePoint(i, sub[i], len(lats), _r(percentile(lats, 50)), _r(percentile(lats, 99))))
    return out
