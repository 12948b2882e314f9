"""Run one seed or sweep many, and summarise what the checkers saw."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from consortia.sim.checker import Violation
from consortia.sim.engines import LoadedEngine, engine_spec
from consortia.sim.options import SimOptions
from consortia.sim.simulation import Simulation


@dataclass(frozen=True)
class RunResult:
    """What one run did. Everything but `wall_ms` is a function of the options alone."""

    seed: int
    engine: str
    nodes: int
    byzantine: int
    crashed: int
    trace_hash: str
    violations: tuple[Violation, ...]
    blocks_committed: int  # the highest height an honest node reached
    engine_messages: int
    latencies_ms: tuple[int, ...]  # per transaction: submit -> durable on a majority
    recovery_ms: int | None  # heal -> every honest node has every transaction
    sim_time_ms: int
    faults: dict[str, int]
    replay: str
    wall_ms: int = field(default=0, compare=False)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def msgs_per_block(self) -> float:
        return self.engine_messages / max(1, self.blocks_committed)

    @property
    def latency_p50_ms(self) -> int | None:
        return percentile(sorted(self.latencies_ms), 50)

    @property
    def latency_p99_ms(self) -> int | None:
        return percentile(sorted(self.latencies_ms), 99)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "engine": self.engine,
            "nodes": self.nodes,
            "byzantine": self.byzantine,
            "crashed": self.crashed,
            "trace_hash": self.trace_hash,
            "violations": [str(v) for v in self.violations],
            "blocks_committed": self.blocks_committed,
            "engine_messages": self.engine_messages,
            "msgs_per_block": round(self.msgs_per_block, 1),
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "recovery_ms": self.recovery_ms,
            "sim_time_ms": self.sim_time_ms,
            "faults": dict(sorted(self.faults.items())),
            "replay": self.replay,
            "wall_ms": self.wall_ms,
        }


def percentile(sorted_values: list[int], pct: int) -> int | None:
    """Nearest-rank percentile of an ascending list (integers in, integer out)."""
    if not sorted_values:
        return None
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def run_options(options: SimOptions, engine: LoadedEngine | None = None) -> RunResult:
    """Run the simulation `options` describe.

    Raises SimError when the engine is not available.
    """
    started = time.perf_counter()
    loaded = engine if engine is not None else options.spec.load()
    sim = Simulation(options, loaded)
    sim.run()
    honest = [n for n in sim.nodes if n.honest]
    faults = dict(sim.counts)
    if sim.checker.suppressed:
        faults["violations_not_listed"] = sim.checker.suppressed
    for k, v in sim.net.counts.items():
        faults[f"net_{k}"] = v
    for p in options.partitions:
        faults[f"partition_{p.kind}"] = faults.get(f"partition_{p.kind}", 0) + 1
    if options.slow_nodes:
        faults["slow_nodes"] = len(options.slow_nodes)
    if options.reorder:
        faults["reorder_enabled"] = 1
    for n in sim.nodes:
        if n.mutator is not None:
            for b in n.mutator.plan.behaviours:
                faults[f"byz_{b}"] = faults.get(f"byz_{b}", 0) + 1
            for k, v in n.mutator.counts.items():
                faults[f"byz_{k}"] = faults.get(f"byz_{k}", 0) + v
    return RunResult(
        seed=options.seed,
        engine=options.engine,
        nodes=options.nodes,
        byzantine=options.byzantine,
        crashed=options.crashed,
        trace_hash=sim.trace_hash,
        violations=tuple(sim.checker.violations),
        blocks_committed=max((n.height for n in honest), default=0),
        engine_messages=sim.engine_messages,
        latencies_ms=tuple(sim.latencies),
        recovery_ms=sim.recovery_ms,
        sim_time_ms=sim.now,
        faults=faults,
        replay=options.replay_command(),
        wall_ms=int((time.perf_counter() - started) * 1000),
    )


def run(
    seed: int,
    engine: str,
    nodes: int,
    byzantine: int = 0,
    crashed: int = 0,
    *,
    amnesia: bool = False,
    loaded: LoadedEngine | None = None,
) -> RunResult:
    """Derive the options of `seed` and run them.

    Raises SimError for impossible options or an engine that is not available.
    """
    options = SimOptions.from_seed(seed, engine, nodes, byzantine, crashed, amnesia=amnesia)
    return run_options(options, loaded)


@dataclass(frozen=True)
class SweepSummary:
    engine: str
    nodes: int
    byzantine: int
    crashed: int
    runs: int
    failed: tuple[RunResult, ...]  # the runs with a violation
    blocks_committed: int
    engine_messages: int
    latency_p50_ms: int | None
    latency_p99_ms: int | None
    recovery_max_ms: int | None
    faults: dict[str, int]
    wall_ms: int

    @property
    def violations(self) -> int:
        return sum(len(r.violations) for r in self.failed)

    @property
    def msgs_per_block(self) -> float:
        return self.engine_messages / max(1, self.blocks_committed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "nodes": self.nodes,
            "byzantine": self.byzantine,
            "crashed": self.crashed,
            "runs": self.runs,
            "failed_runs": len(self.failed),
            "violations": self.violations,
            "failures": [
                {"seed": r.seed, "replay": r.replay, "violations": [str(v) for v in r.violations]}
                for r in self.failed
            ],
            "blocks_committed": self.blocks_committed,
            "msgs_per_block": round(self.msgs_per_block, 1),
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "recovery_max_ms": self.recovery_max_ms,
            "faults": dict(sorted(self.faults.items())),
            "wall_ms": self.wall_ms,
        }


def sweep(
    seeds: Iterable[int],
    engine: str,
    nodes: int,
    byzantine: int = 0,
    crashed: int = 0,
    *,
    amnesia: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
) -> SweepSummary:
    """Run every seed; `on_result` sees each result as it finishes (for progress output).

    Raises SimError for impossible options or an engine that is not available.
    """
    started = time.perf_counter()
    loaded = engine_spec(engine).load()
    failed: list[RunResult] = []
    latencies: list[int] = []
    faults: dict[str, int] = {}
    runs = blocks = messages = 0
    recovery: int | None = None
    for seed in seeds:
        result = run(seed, engine, nodes, byzantine, crashed, amnesia=amnesia, loaded=loaded)
        runs += 1
        blocks += result.blocks_committed
        messages += result.engine_messages
        latencies.extend(result.latencies_ms)
        if result.recovery_ms is not None:
            recovery = max(recovery or 0, result.recovery_ms)
        for k, v in result.faults.items():
            faults[k] = faults.get(k, 0) + v
        if result.violations:
            failed.append(result)
        if on_result is not None:
            on_result(result)
    latencies.sort()
    return SweepSummary(
        engine=engine,
        nodes=nodes,
        byzantine=byzantine,
        crashed=crashed,
        runs=runs,
        failed=tuple(failed),
        blocks_committed=blocks,
        engine_messages=messages,
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
        recovery_max_ms=recovery,
        faults=faults,
        wall_ms=int((time.perf_counter() - started) * 1000),
    )
