"""How consensus cost grows with network size: the deterministic simulator under a WAN model.

Each run is fault-free (no loss, partitions, crashes or byzantine nodes): a steady client
load on `nodes` validators spread over five cloud regions, with one-way link latencies
taken from typical inter-region round-trip times. It reports engine messages and bytes
per committed block and the simulated submit-to-commit latency (on a majority of nodes).
Nothing here depends on the wall clock except the reported wall time of the run.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from consortia.sim import SimOptions, engine_spec, percentile
from consortia.sim.simulation import K_MSG, Simulation
from consortia.types import BlockLimits

REGIONS = ("us-east", "us-west", "eu-west", "ap-southeast", "sa-east")
# One-way latency in ms between regions (half of typical cloud inter-region round trips).
WAN_ONE_WAY_MS = (
    (1, 32, 38, 110, 60),
    (32, 1, 70, 85, 90),
    (38, 70, 1, 90, 95),
    (110, 85, 90, 1, 160),
    (60, 90, 95, 160, 1),
)
JITTER_MS = 5
WARMUP_MS = 1_500  # Raft's first election takes 500-1000 ms; the load starts after it


@dataclass(frozen=True)
class ScaleResult:
    engine: str
    nodes: int
    blocks: int
    txs: int
    msgs_per_block: float
    kib_per_block: float  # engine message bytes on the wire, every copy counted
    latency_p50_ms: int | None
    latency_p99_ms: int | None
    sim_time_ms: int
    wall_s: float
    violations: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wan_latencies(nodes: int) -> tuple[int, ...]:
    """Per directed link (src * nodes + dst): node i lives in region i mod 5."""
    r = len(REGIONS)
    return tuple(WAN_ONE_WAY_MS[s % r][d % r] for s in range(nodes) for d in range(nodes))


def wan_options(
    engine: str,
    nodes: int,
    seed: int = 1,
    load_ms: int = 2_000,
    tx_every_ms: int = 5,
    block_txs: int = 100,
    warmup_ms: int = WARMUP_MS,
) -> SimOptions:
    """A fault-free run: after `warmup_ms` (leader election), one transaction every
    `tx_every_ms` for `load_ms`, then until every node committed every transaction."""
    rng = random.Random(seed)
    return SimOptions(
        seed=seed,
        engine=engine,
        nodes=nodes,
        byzantine=0,
        crashed=0,
        amnesia=False,
        fault_phase_ms=warmup_ms + load_ms,
        liveness_bound_ms=30_000,
        tick_ms=10,
        limits=BlockLimits(txs_max=block_txs, bytes_max=1 << 20, wait_ms=50),
        latency_ms=wan_latencies(nodes),
        jitter_ms=JITTER_MS,
        loss_permille=0,
        dup_permille=0,
        reorder=False,
        partitions=(),
        slow_nodes=(),
        slow_extra_ms=0,
        slow_tick_ms=10,
        clock_offset_ms=tuple(rng.randint(0, 50) for _ in range(nodes)),
        crashes=(),
        byzantine_plans=(),
        twins_split=None,
        exec_ms=2,
        disk_ms=1,
        sync_every_ms=500,
        clients=4,
        submit_ms=tuple(range(warmup_ms, warmup_ms + load_ms, tx_every_ms)),
        probe_txs=0,
    )


class _CountingSimulation(Simulation):
    """Counts the bytes of every engine message copy put on the simulated wire, and what was
    sent and committed before the load started (the warm-up is not charged to the blocks)."""

    bytes_sent = 0
    warm: tuple[int, int, int] | None = None  # (messages, bytes, height) at the first submission

    def _transmit(self, src: Any, to: str, kind: int, payload: Any) -> None:
        if kind == K_MSG:
            self.bytes_sent += len(payload)
        super()._transmit(src, to, kind, payload)

    def _submit(self, i: int) -> None:
        if self.warm is None:
            height = max((n.height for n in self.nodes if n.honest), default=0)
            self.warm = (self.engine_messages, self.bytes_sent, height)
        super()._submit(i)


def run_scale(engine: str, nodes: int, seed: int = 1, load_ms: int = 2_000) -> ScaleResult:
    """Raises SimError when the engine is unknown or not available."""
    started = time.perf_counter()
    sim = _CountingSimulation(wan_options(engine, nodes, seed, load_ms), engine_spec(engine).load())
    sim.run()
    honest = [n for n in sim.nodes if n.honest]
    msgs0, bytes0, height0 = sim.warm or (0, 0, 0)
    blocks = max((n.height for n in honest), default=0) - height0
    lats = sorted(sim.latencies)
    return ScaleResult(
        engine=engine,
        nodes=nodes,
        blocks=blocks,
        txs=len(sim.submitted),
        msgs_per_block=round((sim.engine_messages - msgs0) / max(1, blocks), 1),
        kib_per_block=round((sim.bytes_sent - bytes0) / max(1, blocks) / 1024, 1),
        latency_p50_ms=percentile(lats, 50),
        latency_p99_ms=percentile(lats, 99),
        sim_time_ms=sim.now,
        wall_s=round(time.perf_counter() - started, 1),
        violations=len(sim.checker.violations),
    )
