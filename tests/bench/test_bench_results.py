"""The arithmetic of a run: percentiles, schedule, timeline, ramp verdicts, profile parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.bench.loadgen import _schedule
from consortia.bench.observer import NodeBlocks
from consortia.bench.profile import top_costs
from consortia.bench.ramp import judge
from consortia.bench.results import RunResult, TimePoint, histogram, latency_summary, percentile, timeline

JSON_KEYS = {
    "tps",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "lost",
    "rejected",
}


def result(**kw: object) -> RunResult:
    base: dict[str, object] = dict(
        workload="transfer",
        consensus="solo",
        nodes=1,
        offered_rate=100.0,
        duration_s=1.0,
        workers=1,
        submitted=100,
        committed=100,
        rejected=0,
        lost=0,
        tps=100.0,
        latency_ms=latency_summary([10.0, 20.0, 30.0]),
        latencies_ms=[10.0, 20.0, 30.0],
    )
    base.update(kw)
    return RunResult(**base)  # type: ignore[arg-type]


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1), st.integers(1, 100))
def test_percentile_is_an_element_and_monotone(xs: list[float], pct: int) -> None:
    s = sorted(xs)
    p = percentile(s, pct)
    assert p in s
    assert p <= (percentile(s, min(100, pct + 1)) or 0)


@settings(deadline=None)
@given(st.integers(0, 50_000), st.floats(100, 20_000), st.sampled_from([0.01, 0.05, 0.1]))
def test_schedule_sends_everything_at_the_rate(total: int, rate: float, interval: float) -> None:
    sizes = _schedule(total, rate, interval)
    assert sum(sizes) == total and all(n >= 0 for n in sizes)
    # After k batches no more than rate * k * interval have been sent.
    sent = 0
    for k, n in enumerate(sizes, 1):
        sent += n
        assert sent <= rate * k * interval + 1e-6


def test_summary_has_the_json_keys() -> None:
    out = result().summary()
    assert out.keys() >= JSON_KEYS
    assert out["latency_p50_ms"] == 20.0 and out["latency_max_ms"] == 30.0
    assert "latencies_ms" not in out
    assert sum(c for _, c in out["histogram"]) == 3


def test_judge() -> None:
    assert judge(result(), 1000) == (True, "ok")
    assert not judge(result(lost=1), 1000)[0]
    assert not judge(result(rejected=2, rejected_by_code={"mempool_full": 2}), 1000)[0]
    assert not judge(result(latency_ms={"p99": 5000.0}), 1000)[0]
    assert not judge(result(drain_s=3.0), 1000)[0]


def test_histogram_and_timeline() -> None:
    hist = histogram([1.0] * 10 + [1000.0])
    assert sum(c for _, c in hist) == 11
    tl = timeline(100.0, [100.1, 100.2, 101.5], [(100.5, 50.0), (101.9, 150.0), (101.95, 250.0)], 3)
    assert [p.submitted for p in tl] == [2, 1, 0]
    assert [p.committed for p in tl] == [1, 2, 0]
    assert tl[1].latency_p50_ms == 150.0 and tl[2].latency_p99_ms is None


def test_missed_heights_take_the_next_seen_time() -> None:
    seen = NodeBlocks({5: (3, 10.0), 8: (1, 12.0), 7: (2, 13.0)})
    times = seen.commit_times(5, 9)
    assert times == {5: 10.0, 6: 12.0, 7: 12.0, 8: 12.0}  # 9 never seen: no time


def test_top_costs(tmp_path: Path) -> None:
    path = tmp_path / "p.collapsed"
    path.write_text(
        "main (a/node.py:1);verify (c/suites.py:10) 30\n"
        "main (a/node.py:1);verify (c/suites.py:12) 10\n"
        "main (a/node.py:1);get (l/store.py:5) 60\n"
    )
    costs = top_costs(path)
    assert costs["self"][0] == ("get (l/store.py)", 60.0)
    assert ("verify (c/suites.py)", 40.0) in costs["self"]
    assert costs["inclusive"][0] == ("main (a/node.py)", 100.0)


class FakeHarness:
    """Sustains up to `capacity` tx/s: beyond it p99 explodes."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.rates: list[float] = []
        self.target = type("T", (), {"urls": [], "channel": "main"})()

    def run(self, rate: float, duration_s: float) -> RunResult:
        self.rates.append(rate)
        p99 = 100.0 if rate <= self.capacity else 10_000.0
        steal = {"busy_pct": 60.0, "idle_pct": 30.0, "steal_pct": 10.0}
        return result(offered_rate=rate, latency_ms={"p99": p99}, host_cpu=steal, txs_per_node_cpu_s=rate / 2)


@given(st.integers(50, 20_000))
def test_ramp_brackets_the_capacity(capacity: int) -> None:
    from consortia.bench.ramp import RampOptions, ramp

    fake = FakeHarness(capacity)
    out = ramp(fake, RampOptions(start_rate=1000, factor=1.5, steps_max=12, refine_steps=3))  # type: ignore[arg-type]
    assert out.max_rate is not None and out.max_rate <= capacity
    assert out.best is not None and out.best.offered_rate == out.max_rate
    failed = [s.rate for s in out.steps if not s.sustainable]
    assert failed and min(failed) > capacity
    # Three bisections of a [r, 1.5 r] bracket leave a gap of at most r / 16 (plus rounding).
    assert min(f for f in failed if f > out.max_rate) <= out.max_rate * (1 + 0.5 / 8) + 2
    # Each step in the JSON says how loaded the host was and what a transaction cost.
    steps = out.summary()["steps"]
    assert [s["rate"] for s in steps] == fake.rates
    assert all(s["host_cpu"]["steal_pct"] == 10.0 and s["txs_per_node_cpu_s"] == s["rate"] / 2 for s in steps)


def test_judge_catches_a_rising_latency() -> None:
    rising = [TimePoint(t, 100, 100, 100.0 + 400.0 * t, 200.0 + 400.0 * t) for t in range(8)]
    flat = [TimePoint(t, 100, 100, 100.0 + (t % 2) * 30.0, 300.0) for t in range(8)]
    assert judge(result(duration_s=8.0, timeline=flat), 5000) == (True, "ok")
    ok, why = judge(result(duration_s=8.0, timeline=rising, latency_ms={"p99": 1000.0}), 5000)
    assert not ok and why.startswith("latency rising")


class NoisyHarness(FakeHarness):
    """A host whose neighbours steal `steals[i]`% of the CPU during run i, which halves the
    capacity while the steal is above 20%."""

    def __init__(self, capacity: float, steals: list[float]) -> None:
        super().__init__(capacity)
        self.steals = steals

    def run(self, rate: float, duration_s: float) -> RunResult:
        steal = self.steals[len(self.rates)] if len(self.rates) < len(self.steals) else 0.0
        self.rates.append(rate)
        capacity = self.capacity / 2 if steal > 20 else self.capacity
        p99 = 100.0 if rate <= capacity else 10_000.0
        host = {"busy_pct": 100.0 - steal, "idle_pct": 0.0, "steal_pct": steal}
        return result(offered_rate=rate, latency_ms={"p99": p99}, host_cpu=host)


def test_ramp_runs_a_step_again_when_steal_failed_it() -> None:
    from consortia.bench.ramp import RampOptions, ramp

    # The first two runs meet 45% steal; then the host is quiet.
    fake = NoisyHarness(3000, [45.0, 45.0])
    out = ramp(fake, RampOptions(start_rate=2000, factor=2, steps_max=3, refine_steps=0))  # type: ignore[arg-type]
    assert fake.rates == [2000, 2000, 2000, 4000]
    assert [s.retried for s in out.steps] == [True, True, False, False]
    assert "host steal 45.0% over 20%: run again" in out.steps[0].why
    assert out.max_rate == 2000 and out.best is not None and out.best.host_cpu["steal_pct"] == 0.0
    assert [s["retried"] for s in out.summary()["steps"]] == [True, True, False, False]


def test_ramp_gives_up_on_a_host_that_stays_busy() -> None:
    from consortia.bench.ramp import RampOptions, ramp

    fake = NoisyHarness(3000, [45.0] * 20)
    options = RampOptions(start_rate=2000, factor=2, steps_max=1, refine_steps=0, steal_retries=1)
    out = ramp(fake, options)  # type: ignore[arg-type]
    # 2000 fails twice (once retried), then the ramp comes down to 1000, which holds.
    assert fake.rates == [2000, 2000, 1000]
    assert [(s.rate, s.sustainable, s.retried) for s in out.steps] == [
        (2000, False, True),
        (2000, False, False),
        (1000, True, False),
    ]
    assert out.max_rate == 1000


def test_ramp_without_a_steal_bound_judges_every_step_once() -> None:
    from consortia.bench.ramp import RampOptions, ramp

    fake = NoisyHarness(3000, [45.0])
    options = RampOptions(start_rate=2000, factor=2, steps_max=1, refine_steps=0, steal_max_pct=100)
    out = ramp(fake, options)  # type: ignore[arg-type]
    assert fake.rates == [2000, 1000] and not any(s.retried for s in out.steps)


@pytest.mark.parametrize("options", [{"steal_max_pct": -1}, {"steal_max_pct": 101}, {"steal_retries": -1}])
def test_ramp_refuses_a_steal_bound_out_of_range(options: dict[str, float]) -> None:
    from consortia.bench.errors import BenchError
    from consortia.bench.ramp import RampOptions

    with pytest.raises(BenchError, match="steal bound"):
        RampOptions(**options).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--steal-max", "150", "steal bound"),
        ("--ramp-factor", "1", "ramp factor"),
        ("--step-s", "0", "positive"),
    ],
)
def test_cli_refuses_bad_ramp_options_before_standing_anything_up(
    flag: str, value: str, message: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from consortia.cli.main import app

    out = CliRunner().invoke(
        app, ["bench", "--up", "--dir", str(tmp_path / "net"), "--ramp", flag, value, "--json"]
    )
    assert out.exit_code != 0 and message in out.output
    assert not (tmp_path / "net").exists()
