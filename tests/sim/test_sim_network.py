"""The fake network keeps its promises: FIFO links unless reordering, cuts drop, heal cleans."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.sim import SimOptions, percentile
from consortia.sim.network import FakeNetwork
from consortia.sim.options import LinkCut, Partition


def options(**changes: object) -> SimOptions:
    base = SimOptions.from_seed(1, "toy", 3)
    clean = dict(loss_permille=0, dup_permille=0, reorder=False, jitter_ms=30, partitions=(), slow_nodes=())
    clean.update(changes)
    return dataclasses.replace(base, **clean)  # type: ignore[arg-type]


@given(seed=st.integers(0, 2**32), sends=st.lists(st.integers(0, 50), min_size=1, max_size=40))
@settings(max_examples=40, deadline=None)
def test_links_are_fifo_without_reordering(seed: int, sends: list[int]) -> None:
    net = FakeNetwork(options(), random.Random(seed))
    now, arrivals = 0, []
    for gap in sends:
        now += gap
        arrivals.extend(net.arrivals(0, 1, 0, 1, now))
    assert arrivals == sorted(arrivals) and len(arrivals) == len(sends)


def test_reordering_happens_when_enabled() -> None:
    net = FakeNetwork(options(reorder=True), random.Random(3))
    arrivals = [t for now in range(200) for t in net.arrivals(0, 1, 0, 1, now)]
    assert arrivals != sorted(arrivals) and net.counts["reordered"] > 0


def test_cuts_are_directed_and_timed_and_heal() -> None:
    cut = Partition("asymmetric", 100, 200, (LinkCut(0, 1, 100, 200),))
    net = FakeNetwork(options(partitions=(cut,)), random.Random(1))
    assert net.arrivals(0, 1, 0, 1, 150) == []
    assert net.arrivals(1, 0, 1, 0, 150) != []  # the other direction still works
    assert net.arrivals(0, 1, 0, 1, 99) != [] and net.arrivals(0, 1, 0, 1, 200) != []
    net.healed = True
    assert net.arrivals(0, 1, 0, 1, 150) != []
    assert net.counts["partitioned"] == 1


def test_loss_and_duplication_rates() -> None:
    net = FakeNetwork(options(loss_permille=100, dup_permille=100), random.Random(5))
    delivered = sum(len(net.arrivals(0, 1, 0, 1, t)) for t in range(5_000))
    assert 400 < net.counts["lost"] < 600 and 400 < net.counts["duplicated"] < 600
    assert delivered == 5_000 - net.counts["lost"] + net.counts["duplicated"]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 99) == 7
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50, 99, 100)
