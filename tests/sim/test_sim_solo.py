"""Solo under the simulator: one node, crashes between durable writes, 200 seeds, no violation."""

from __future__ import annotations

from consortia.sim import sweep


def test_solo_sweep_with_crashes() -> None:
    summary = sweep(range(200), "solo", 1, 0, 1)
    assert [r.replay for r in summary.failed] == []
    assert summary.runs == 200 and summary.blocks_committed > 200 * 10
    assert summary.faults["crashes"] > 0 and summary.faults["restarts"] == summary.faults["crashes"]
    assert summary.recovery_max_ms is not None and summary.recovery_max_ms <= 30_000
