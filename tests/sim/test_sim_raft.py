"""Raft under the simulator: f crashed nodes (with lost writes), partitions, loss; no violation."""

from __future__ import annotations

import pytest

from consortia.sim import LIVENESS_BOUND_MS, sweep

pytest.importorskip("consortia.consensus.raft")


def test_raft_sweep_three_nodes_one_crashing() -> None:
    summary = sweep(range(200), "raft", 3, 0, 1)
    assert [(r.replay, [str(v) for v in r.violations]) for r in summary.failed] == []
    assert summary.runs == 200
    assert summary.faults["lost_write_crashes"] > 0 and summary.faults["net_partitioned"] > 0
    assert summary.recovery_max_ms is not None and summary.recovery_max_ms <= LIVENESS_BOUND_MS


def test_raft_sweep_five_nodes_two_crashing() -> None:
    summary = sweep(range(1000, 1020), "raft", 5, 0, 2)
    assert [(r.replay, [str(v) for v in r.violations]) for r in summary.failed] == []
