"""PBFT under the simulator: f byzantine nodes of every kind, plus network faults; no violation."""

from __future__ import annotations

import pytest

from consortia.sim import LIVENESS_BOUND_MS, sweep

pytest.importorskip("consortia.consensus.pbft")


def test_pbft_sweep_four_nodes_one_byzantine() -> None:
    summary = sweep(range(200), "pbft", 4, 1, 0)
    assert [(r.replay, [str(v) for v in r.violations]) for r in summary.failed] == []
    assert summary.runs == 200
    assert summary.faults["byz_twins"] > 0 and summary.faults["byz_equivocated"] > 0
    assert summary.recovery_max_ms is not None and summary.recovery_max_ms <= LIVENESS_BOUND_MS


def test_pbft_sweep_with_a_crashing_node() -> None:
    summary = sweep(range(500, 520), "pbft", 4, 0, 1)
    assert [(r.replay, [str(v) for v in r.violations]) for r in summary.failed] == []
