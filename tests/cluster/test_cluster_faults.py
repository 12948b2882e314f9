"""Faults on real node processes under a steady load of signed transactions.

With at most f faulty nodes progress continues; a killed node restarts and catches up; in
the end every node reports the same height, head hash and state root, and every
transaction acknowledged as committed is in every node's ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.cluster_kit import Cluster, Load, all_committed


@pytest.mark.parametrize("consensus", ["raft", "pbft"])
def test_kill_9_follower_then_leader(consensus: str, tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", consensus)
    cluster.start()
    try:
        with Load(cluster) as load:
            load.wait_more(15)
            leader = cluster.leader()
            follower = next(e.name for e in cluster.entries if e.name != leader)
            cluster.kill(follower)
            load.wait_more(15, timeout_s=90)  # f = 1 of 4 down: still a quorum
            cluster.restart(follower)
            leader = cluster.leader()
            cluster.kill(leader)
            load.wait_more(15, timeout_s=120)  # a new leader / primary takes over
            cluster.restart(leader)
            load.wait_more(5, timeout_s=90)
        cluster.wait_converged(timeout_s=90)
        assert load.count() >= 50
        assert all_committed(cluster, load.acknowledged) == []
    finally:
        cluster.stop_all()


@pytest.mark.parametrize("consensus", ["raft", "pbft"])
def test_partitioned_leader_heals(consensus: str, tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", consensus)
    cluster.start()
    try:
        with Load(cluster) as load:
            load.wait_more(10)
            leader = cluster.leader()
            cluster.pause(leader)  # its sockets stay open but it answers nothing
            load.wait_more(15, timeout_s=120)
            cluster.resume(leader)
            load.wait_more(10, timeout_s=90)
        cluster.wait_converged(timeout_s=90)
        assert all_committed(cluster, load.acknowledged) == []
    finally:
        cluster.stop_all()
