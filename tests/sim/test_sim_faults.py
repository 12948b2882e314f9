"""Every fault the options describe really happens in some runs, and a safe engine survives it."""

from __future__ import annotations

import pytest

from consortia.sim import SimOptions, sweep
from consortia.sim.options import BEHAVIOURS, PARTITION_KINDS

NETWORK_AND_DISK = (
    "net_lost",
    "net_duplicated",
    "net_reordered",
    "net_partitioned",
    "slow_nodes",
    "crashes",
    "restarts",
    "lost_write_crashes",
    "actions_lost_at_crash",
    "empty_disk_restarts",
    "sync_blocks",
    *(f"partition_{k}" for k in PARTITION_KINDS),
)


@pytest.fixture(scope="module")
def crash_sweep() -> object:
    return sweep(range(30), "toy", 4, 0, 1)


def test_network_crash_and_disk_faults_all_happen(crash_sweep: object) -> None:
    amnesia = sweep(range(30, 45), "toy", 4, 0, 1, amnesia=True)
    faults = dict(getattr(crash_sweep, "faults", {}))
    for k, v in amnesia.faults.items():
        faults[k] = faults.get(k, 0) + v
    missing = [k for k in NETWORK_AND_DISK if not faults.get(k)]
    assert missing == []


def test_a_safe_engine_passes_every_checker_under_crashes(crash_sweep: object) -> None:
    assert getattr(crash_sweep, "failed", None) == ()
    assert getattr(crash_sweep, "recovery_max_ms", 10**9) <= 30_000


def test_every_byzantine_behaviour_happens() -> None:
    # The toy engine is not byzantine-safe: only the counts matter here.
    summary = sweep(range(40), "toy-bft", 4, 1)
    counts = summary.faults
    for behaviour in BEHAVIOURS:
        assert counts.get(f"byz_{behaviour}"), behaviour
    for effect in ("equivocated", "future_view", "forged_cert", "bad_sig", "silenced", "flooded", "replayed"):
        assert counts.get(f"byz_{effect}"), effect
    assert counts.get("twins_split_dropped") and counts.get("empty_disk_restarts")
    assert counts.get("sync_blocks_refused")  # blocks served with forged certificates


def test_crashes_strike_only_the_chosen_honest_nodes() -> None:
    for seed in range(50):
        o = SimOptions.from_seed(seed, "pbft", 7, 2, 2)
        crashing = {c.node for c in o.crashes if not c.empty_disk}
        assert len(crashing) == 2
        assert not crashing & set(o.byzantine_nodes)
        assert all(0 < c.at_ms < o.fault_phase_ms for c in o.crashes)
