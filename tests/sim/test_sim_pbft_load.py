"""PBFT under load: blocks that take longer to build and execute than the request timer.

A fault-free network on a fast LAN, but every transaction costs the driver 1 ms to build or
execute (a node on a busy host), and a burst of transactions arrives at once. A block of
1,200 transactions then takes 1.2 s to build on the primary and 1.2 s to execute on each
backup: 2.4 s from the burst to the commit, longer than the 2 s default request timer. The
engine must not read that as a faulty primary; view changes there only make the next block
(built from a fuller pool) slower still.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from consortia.sim import SimOptions
from consortia.sim.engines import engine_spec
from consortia.sim.simulation import Simulation
from consortia.types import BlockLimits

pytest.importorskip("consortia.consensus.pbft")

WARMUP_MS = 500


def _loaded(seed: int, burst: int, us_per_tx: int) -> SimOptions:
    base = SimOptions.from_seed(seed, "pbft", 4)
    nodes = base.nodes
    steady = tuple(range(WARMUP_MS, WARMUP_MS + 3_000, 25))  # and a trickle after it
    return replace(
        base,
        fault_phase_ms=WARMUP_MS + 3_000,
        tick_ms=10,
        limits=BlockLimits(txs_max=2_000, bytes_max=8 << 20, wait_ms=50),
        latency_ms=tuple(1 for _ in range(nodes * nodes)),
        jitter_ms=1,
        loss_permille=0,
        dup_permille=0,
        reorder=False,
        partitions=(),
        slow_nodes=(),
        clock_offset_ms=tuple(0 for _ in range(nodes)),
        crashes=(),
        byzantine_plans=(),
        twins_split=None,
        exec_ms=2,
        exec_us_per_tx=us_per_tx,
        submit_ms=(WARMUP_MS,) * burst + steady,
        probe_txs=0,
    )


def _run(options: SimOptions) -> Simulation:
    sim = Simulation(options, engine_spec("pbft").load())
    sim.run()
    return sim


def test_blocks_slower_than_the_request_timer_commit_without_view_changes() -> None:
    sim = _run(_loaded(seed=1, burst=1_200, us_per_tx=1_000))
    assert sim.checker.violations == []
    assert sim.recovery_ms is not None  # every transaction committed on every node
    assert [n.engine.status()["view"] for n in sim.nodes if n.engine is not None] == [0, 0, 0, 0]
    # The timer allows for blocks this slow: twice the driver's time on the slowest recent one.
    for node in sim.nodes:
        assert node.engine is not None
        status = node.engine.status()
        assert isinstance(status["work_ms"], int) and status["work_ms"] >= 1_200
        assert status["timeout_ms"] == 2 * status["work_ms"]


def test_a_burst_larger_than_the_timer_allows_costs_at_most_one_view_change() -> None:
    """With no history, 2 s to build the first 2,000-transaction block looks like a dead
    primary; one view change later the timer has doubled and the next block commits."""
    sim = _run(_loaded(seed=2, burst=2_000, us_per_tx=1_000))
    assert sim.checker.violations == []
    assert sim.recovery_ms is not None
    assert max(n.engine.status()["view"] for n in sim.nodes if n.engine is not None) <= 1
