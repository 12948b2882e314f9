"""Deterministic simulation of consensus engines: fake clock, network and disks, one seed.

`run(seed, engine, nodes, byzantine, crashed)` replays one run exactly; `sweep(range(n), ...)`
runs many and lists every seed that broke a checker with the command that replays it.
"""

from consortia.sim.checker import VIOLATION_KINDS, Checker, Violation
from consortia.sim.engines import ENGINES, EngineSpec, available, engine_spec
from consortia.sim.errors import SimError
from consortia.sim.options import LIVENESS_BOUND_MS, SimOptions
from consortia.sim.runner import RunResult, SweepSummary, percentile, run, run_options, sweep

__all__ = [
    "ENGINES",
    "LIVENESS_BOUND_MS",
    "VIOLATION_KINDS",
    "Checker",
    "EngineSpec",
    "RunResult",
    "SimError",
    "SimOptions",
    "SweepSummary",
    "Violation",
    "available",
    "engine_spec",
    "percentile",
    "run",
    "run_options",
    "sweep",
]
