"""What `consortia bench` does for one network: a fixed-rate run, or a ramp plus a confirmation run.

The confirmation run repeats the load at a fraction (default 80%) of the maximum rate the
ramp found, for the full duration: the latency a network shows there is the latency it
offers in service, away from the edge of saturation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortia.bench.errors import BenchError
from consortia.bench.profile import Profiler
from consortia.bench.ramp import RampOptions, RampResult, RampStep, ramp
from consortia.bench.results import RunResult
from consortia.bench.runner import Harness, RunOptions
from consortia.bench.target import Target


@dataclass(frozen=True)
class BenchOptions:
    run: RunOptions = field(default_factory=RunOptions)
    rate: float = 2000.0
    duration_s: float = 30.0
    ramp: RampOptions | None = None  # None: one fixed-rate run at `rate`
    confirm_fraction: float = 0.8  # after a ramp, run at this share of the max rate (0: skip)
    profile_dir: Path | None = None  # sample the nodes with py-spy during the main run
    profile_gil: bool = False  # only samples holding the GIL


@dataclass
class Outcome:
    label: str
    run: RunResult | None  # the fixed-rate run, or the confirmation run after a ramp
    ramp: RampResult | None = None
    profile: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON: the main run's keys at the top level (tps, latency_*_ms, lost, rejected)."""
        out: dict[str, Any] = {"label": self.label}
        main = self.run or (self.ramp.best if self.ramp else None)
        if main is None and self.ramp is not None and self.ramp.steps:
            main = self.ramp.steps[-1].result  # nothing was sustainable: the last (lowest) step
        if main is not None:
            out.update(main.summary())
        if self.ramp is not None:
            out["ramp"] = self.ramp.summary()
            out["max_sustainable_rate"] = self.ramp.max_rate
            out["max_sustainable_tps"] = None if self.ramp.best is None else self.ramp.best.tps
        if self.profile:
            out["profile"] = self.profile
        return out


def bench_target(
    target: Target,
    label: str,
    options: BenchOptions,
    say: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Raises BenchError (bad options, set-up failure, a client process dying)."""
    with Harness(target, options.run) as h:
        if options.ramp is None:
            say(f"{label}: {options.rate:,.0f}/s for {options.duration_s:.0f} s")
            run, prof = _profiled(h, target, options, options.rate)
            return Outcome(label, run, profile=prof)

        def step(s: RampStep) -> None:
            verdict = "ok" if s.sustainable else s.why
            p99 = s.result.latency_ms.get("p99")
            say(f"{label}: ramp {s.rate:,.0f}/s -> {s.result.tps:,.0f} TPS, p99 {p99} ms: {verdict}")

        say(f"{label}: ramp from {options.ramp.start_rate:,.0f}/s")
        result = ramp(h, options.ramp, step)
        outcome = Outcome(label, None, result)
        if result.max_rate is not None and options.confirm_fraction > 0:
            rate = round(result.max_rate * options.confirm_fraction)
            share = f"{options.confirm_fraction:.0%}"
            say(f"{label}: {rate:,.0f}/s ({share} of max) for {options.duration_s:.0f} s")
            outcome.run, outcome.profile = _profiled(h, target, options, rate)
        return outcome


def _profiled(
    h: Harness, target: Target, options: BenchOptions, rate: float
) -> tuple[RunResult, dict[str, Any]]:
    if options.profile_dir is None:
        return h.run(rate, options.duration_s), {}
    pids = [(n.name, n.pid) for n in target.nodes if n.pid]
    if not pids:
        raise BenchError("--profile needs the node process ids (use --up or --network)")
    started: list[Profiler] = []

    out = options.profile_dir / target.consensus

    def start() -> None:
        started.append(Profiler.start(out, pids, options.duration_s, options.profile_gil))

    run = h.run(rate, options.duration_s, start)
    return run, started[0].finish() if started else {}
