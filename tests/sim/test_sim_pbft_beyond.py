"""Beyond the fault model the checker must fail: f+1 byzantine twins fork PBFT."""

from __future__ import annotations

import pytest

from consortia.sim import sweep

pytest.importorskip("consortia.consensus.pbft")


def test_pbft_with_f_plus_one_twins_forks() -> None:
    summary = sweep(range(10), "pbft", 4, 2, 0)
    assert summary.failed, "f+1 byzantine twins never broke agreement: is the checker blind?"
    kinds = {v.kind for r in summary.failed for v in r.violations}
    assert "agreement" in kinds
    seed = summary.failed[0].seed
    assert summary.failed[0].replay == f"consortia sim --engine pbft --nodes 4 --byzantine 2 --seed {seed}"


def test_f_twins_do_not_fork_pbft() -> None:
    summary = sweep(range(7, 17), "pbft", 7, 2, 0)
    assert [(r.replay, [str(v) for v in r.violations]) for r in summary.failed] == []
