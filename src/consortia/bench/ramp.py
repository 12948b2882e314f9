"""Find the maximum sustainable rate: step the offered rate up until the network stops keeping up.

A rate is sustainable when nothing is rejected or lost, the p99 commit latency stays under
`latency_bound_ms`, the last transaction commits within that bound of the end of the load,
and the median latency does not climb during the step (a growing queue shows up in these
two long before p99 crosses the bound). The ramp multiplies the rate by
`factor` while steps pass (or divides it, when the first step already fails), then bisects
between the highest pass and the lowest failure above it.

On a virtual machine the hypervisor may lend the host's CPUs elsewhere ("steal"), which
slows every process alike: a step that fails while steal exceeds `steal_max_pct` says more
about the neighbours than about the platform, so its rate is run again (at most
`steal_retries` times; every attempt stays in the steps, marked `retried`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from consortia.bench.errors import BenchError
from consortia.bench.results import RunResult
from consortia.bench.runner import Harness

IDLE_WAIT_S = 60.0
RISE_SLACK_MS = 200.0  # a rise in median latency smaller than this is noise, not a queue


@dataclass(frozen=True)
class RampOptions:
    start_rate: float = 1000.0
    factor: float = 1.5
    step_s: float = 8.0
    steps_max: int = 10
    refine_steps: int = 2
    latency_bound_ms: float = 2000.0
    steal_max_pct: float = 20.0
    steal_retries: int = 2

    def validate(self) -> None:
        """Raises BenchError for options that cannot describe a ramp."""
        if self.start_rate <= 0 or self.step_s <= 0 or self.latency_bound_ms <= 0:
            raise BenchError("ramp start rate, step duration and latency bound must be positive")
        if self.factor <= 1.0:
            raise BenchError("the ramp factor must be above 1")
        if self.steps_max < 1 or self.refine_steps < 0:
            raise BenchError("the ramp needs at least one step")
        if not 0 <= self.steal_max_pct <= 100 or self.steal_retries < 0:
            raise BenchError("the steal bound must be 0-100% and its retries >= 0")


@dataclass
class RampStep:
    rate: float
    sustainable: bool
    why: str
    result: RunResult
    retried: bool = False  # failed under steal above the bound: the rate was run again


@dataclass
class RampResult:
    max_rate: float | None  # the highest offered rate that was sustainable
    best: RunResult | None  # the run at that rate
    steps: list[RampStep] = field(default_factory=list)
    options: RampOptions = field(default_factory=RampOptions)

    def summary(self) -> dict[str, Any]:
        return {
            "max_sustainable_rate": self.max_rate,
            "tps": None if self.best is None else self.best.tps,
            "best": None if self.best is None else self.best.summary(),
            "steps": [
                {
                    "rate": s.rate,
                    "sustainable": s.sustainable,
                    "why": s.why,
                    "tps": s.result.tps,
                    "latency_p99_ms": s.result.latency_ms.get("p99"),
                    "rejected": s.result.rejected,
                    "lost": s.result.lost,
                    "txs_per_node_cpu_s": s.result.txs_per_node_cpu_s,
                    "host_cpu": s.result.host_cpu,
                    "retried": s.retried,
                }
                for s in self.steps
            ],
            "latency_bound_ms": self.options.latency_bound_ms,
        }


def judge(result: RunResult, bound_ms: float) -> tuple[bool, str]:
    """Is this run's rate sustainable? (verdict, the reason when it is not)."""
    if result.rejected:
        return False, f"{result.rejected} rejected ({', '.join(sorted(result.rejected_by_code))})"
    if result.lost:
        return False, f"{result.lost} not committed in time"
    p99 = result.latency_ms.get("p99")
    if p99 is None or p99 > bound_ms:
        return False, f"p99 {p99} ms over the {bound_ms:.0f} ms bound"
    if result.drain_s * 1000 > bound_ms:
        return False, f"backlog: last commit {result.drain_s} s after the load ended"
    early, late = _quarter_medians(result)
    if early is not None and late is not None and late > 2 * early + RISE_SLACK_MS:
        return False, f"latency rising: p50 {early:.0f} ms in the first quarter, {late:.0f} ms in the last"
    return True, "ok"


def _quarter_medians(result: RunResult) -> tuple[float | None, float | None]:
    """Mean per-second p50 latency in the first and the last quarter of the load."""
    quarter = result.duration_s / 4
    first = [p.latency_p50_ms for p in result.timeline if p.t_s < quarter and p.latency_p50_ms is not None]
    last = [
        p.latency_p50_ms
        for p in result.timeline
        if result.duration_s - quarter <= p.t_s < result.duration_s and p.latency_p50_ms is not None
    ]
    return _mean(first), _mean(last)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def ramp(harness: Harness, options: RampOptions, on_step: Any = None) -> RampResult:
    """Raises BenchError for bad options (and whatever Harness.run raises)."""
    options.validate()
    out = RampResult(None, None, options=options)
    rate = options.start_rate
    failed: float | None = None

    def step(r: float) -> bool:
        retries = options.steal_retries
        while True:
            result = harness.run(r, options.step_s)
            ok, why = judge(result, options.latency_bound_ms)
            steal = result.host_cpu.get("steal_pct", 0.0)
            again = not ok and steal > options.steal_max_pct and retries > 0
            if again:
                why += f"; host steal {steal}% over {options.steal_max_pct:g}%: run again"
                retries -= 1
            out.steps.append(RampStep(r, ok, why, result, again))
            if on_step is not None:
                on_step(out.steps[-1])
            if ok and (out.max_rate is None or r > out.max_rate):
                out.max_rate, out.best = r, result
            if not ok:
                wait_idle(harness)
            if not again:
                return ok

    for _ in range(options.steps_max):
        if not step(rate):
            failed = rate
            break
        rate = round(rate * options.factor)
    if failed is None:
        return out
    # The very first rate failed: come down until one holds (the floor of the bisection).
    for _ in range(options.steps_max):
        if out.max_rate is not None:
            break
        rate = round(rate / options.factor)
        if rate < 1:
            return out
        if not step(rate):
            failed = rate
    low = out.max_rate or 0.0
    high = failed
    for _ in range(options.refine_steps):
        mid = round((low + high) / 2)
        if mid <= low or mid >= high:
            break
        if step(mid):
            low = mid
        else:
            high = mid
    return out


def wait_idle(harness: Harness, timeout_s: float = IDLE_WAIT_S) -> None:
    """Let a backlog left by an unsustainable step clear before the next step starts."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = 0
        for url in harness.target.urls:
            try:
                info = httpx.get(f"{url}/v1/channels/{harness.target.channel}/info", timeout=5.0).json()
                pending += int(info.get("mempool_txs", 0))
            except (httpx.HTTPError, ValueError):
                pass
        if pending == 0:
            return
        time.sleep(0.5)
