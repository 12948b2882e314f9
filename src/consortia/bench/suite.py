"""The standard suite behind `make bench`: every target of the benchmark page, in ~10 minutes.

It writes the page (Markdown) with the machine, the exact commands and the results, and its
charts into a folder beside it. Text between `<!-- analysis -->` and `<!-- /analysis -->`
in an existing page is kept, so the written analysis survives a re-run.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia.bench.procstats import host_cpu, host_cpu_shares, load_average, machine
from consortia.bench.profile import py_spy
from consortia.bench.ramp import RampOptions
from consortia.bench.report import PRESIGNED_NOTE, charts, markdown_ramp, markdown_table
from consortia.bench.results import RunResult
from consortia.bench.runner import RunOptions
from consortia.bench.session import BenchOptions, Outcome, bench_target
from consortia.bench.simscale import REGIONS, WAN_ONE_WAY_MS, ScaleResult, run_scale
from consortia.bench.target import stand_up

ANALYSIS = re.compile(r"<!-- analysis -->.*?<!-- /analysis -->", re.S)
SIM_NODES = (4, 16, 64, 100)


@dataclass(frozen=True)
class Case:
    engine: str
    workload: str
    ramp: RampOptions | None
    rate: float
    duration_s: float
    profile: bool = False

    def command(self) -> str:
        cmd = f"consortia bench --up --orgs 4 --consensus {self.engine} --workload {self.workload}"
        if self.ramp is not None:
            r = self.ramp
            cmd += (
                f" --ramp --ramp-start {r.start_rate:.0f} --ramp-factor {r.factor} --step-s {r.step_s:.0f}"
                f" --latency-bound-ms {r.latency_bound_ms:.0f} --confirm 0.8"
            )
        else:
            cmd += f" --rate {self.rate:.0f}"
        return cmd + f" --duration {self.duration_s:.0f} --json"


def _ramp(start: float, step_s: float = 8.0, refine: int = 2) -> RampOptions:
    return RampOptions(
        start_rate=start,
        factor=1.35,
        step_s=step_s,
        steps_max=8,
        refine_steps=refine,
        latency_bound_ms=2000.0,
    )


CASES = (
    Case("solo", "transfer", _ramp(2000), 0, 20, profile=True),
    Case("raft", "transfer", _ramp(700), 0, 20),
    Case("pbft", "transfer", _ramp(700), 0, 20, profile=True),
    Case("solo", "kv_write", None, 1000, 10),
    Case("solo", "contract_call", None, 700, 10),
    Case("solo", "query", _ramp(500, step_s=5.0, refine=1), 0, 10),
    Case("solo", "erc20_transfer", None, 80, 10),
)


def run_suite(page: Path, command: str, say: Callable[[str], None] = print) -> None:
    """Run every case and the simulation table, then write `page`.

    Raises BenchError when a network does not come up or a run fails outright.
    """
    started = time.monotonic()
    host_before = host_cpu()
    assets = page.parent / page.stem
    profiling = py_spy() is not None
    # The raw stacks are large and change every run: only their summary goes on the page.
    profiles = Path(tempfile.mkdtemp(prefix="consortia-bench-profiles-"))
    outcomes: list[tuple[Case, Outcome]] = []
    for case in CASES:
        options = BenchOptions(
            run=RunOptions(workload=case.workload, drain_s=20.0),
            rate=case.rate,
            duration_s=case.duration_s,
            ramp=case.ramp,
            profile_dir=profiles if case.profile and profiling else None,
        )
        with stand_up(case.engine, 4) as target:
            outcomes.append((case, bench_target(target, f"{case.engine} {case.workload}", options, say)))
    scale: list[ScaleResult] = []
    for engine in ("raft", "pbft"):
        for n in SIM_NODES:
            say(f"simulating {engine} with {n} nodes...")
            scale.append(run_scale(engine, n))
    shutil.rmtree(profiles, ignore_errors=True)
    old = page.read_text() if page.exists() else ""
    kept = ANALYSIS.search(old)
    analysis = kept.group(0) if kept else "<!-- analysis -->\n(no analysis written yet)\n<!-- /analysis -->"
    host = host_cpu_shares(host_before, host_cpu())
    text = render(command, outcomes, scale, assets, analysis, time.monotonic() - started, host)
    page.write_text(text)
    (assets / "results.json").write_text(json.dumps(summary_json(outcomes), indent=1, sort_keys=True))


def _targets(outcomes: list[tuple[Case, Outcome]]) -> list[str]:
    by = {(c.engine, c.workload): o for c, o in outcomes}
    rows = ["| target | goal | measured | met |", "|---|---|---|---|"]

    def line(name: str, goal: str, value: float | None, ok: bool | None, unit: str = "") -> None:
        shown = "-" if value is None else f"{value:,.0f}{unit}"
        rows.append(f"| {name} | {goal} | {shown} | {'-' if ok is None else ('yes' if ok else 'no')} |")

    for engine, goal in (("solo", 10_000), ("raft", 4_000), ("pbft", 3_000)):
        o = by.get((engine, "transfer"))
        tps = o.ramp.best.tps if o is not None and o.ramp is not None and o.ramp.best is not None else None
        nodes = "1 node" if engine == "solo" else "4 nodes"
        line(
            f"{engine}, {nodes}: max sustainable transfers",
            f">= {goal:,} TPS",
            tps,
            None if tps is None else tps >= goal,
            " TPS",
        )
    o = by.get(("pbft", "transfer"))
    p99 = o.run.latency_ms.get("p99") if o is not None and o.run is not None else None
    rate = o.run.offered_rate if o is not None and o.run is not None else None
    line(
        f"pbft p99 at 80% of max ({rate:,.0f}/s)" if rate else "pbft p99 at 80% of max",
        "< 1,500 ms",
        p99,
        None if p99 is None else p99 < 1500,
        " ms",
    )
    runs = [o.run for _, o in outcomes if o.run is not None and not o.run.read_only]
    rss = max((u.rss_peak_mib or 0 for r in runs for u in r.nodes_usage), default=None)
    ratio = max((r.disk_to_raw_ratio or 0 for r in runs if r.workload == "transfer"), default=None)
    rows.append(
        f"| peak RSS per node (runs here, not 1M transfers) | < 1,024 MiB | {rss or '-'} MiB | see analysis |"
    )
    rows.append(
        f"| disk per node / raw tx bytes (transfer runs, worst) | < 2.0 | {ratio or '-'} | see analysis |"
    )
    return rows


def render(
    command: str,
    outcomes: list[tuple[Case, Outcome]],
    scale: list[ScaleResult],
    assets: Path,
    analysis: str,
    wall_s: float,
    host: dict[str, float] | None = None,
) -> str:
    m = machine()
    la = ", ".join(f"{x:.2f}" for x in load_average())
    steal = f"; host CPU stolen by the hypervisor during the suite: {host['steal_pct']}%" if host else ""
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` (`make bench`) in {wall_s / 60:.1f} minutes;",
        f"load average at the end: {la}{steal}.",
        "The host may be shared with other work while the suite runs: repeat a case and take the median",
        "before drawing conclusions from a difference under ~30%.",
        "",
        "## Machine",
        "",
        f"- {m['nproc']} cores: {m['cpu_model']}",
        f"- {m['ram_gib']} GiB RAM, Linux {m['kernel']}",
        f"- Python {m['python']}",
        "- Everything on this one host: the nodes, and the load generator (2 client processes).",
        "",
        "## Method",
        "",
        PRESIGNED_NOTE,
        "Load is open-loop: batches are due every 50 ms whatever happened to earlier ones, and latency is",
        "measured from the due time to the moment the block holding the transaction was announced",
        "committed on the node it was submitted to (the node's WebSocket block stream). At the end every",
        "submitted transaction is looked up in the committed blocks: `lost` counts those admitted but",
        "never committed, `rejected` those refused at admission. TPS is committed transactions over the",
        "time from the first submission to the last commit (Hyperledger Caliper's definition). A ramp",
        "step is sustainable when nothing is rejected or lost, p99 stays under the bound, the last",
        "commit lands within the bound of the end of the load and the median latency does not climb",
        "during the step; the ramp then runs 80% of the maximum for the full duration (the",
        "confirmation run, which the results table shows). A node's CPU time and RSS include its",
        'child processes (the signature verification workers). "host steal %" is the share of the',
        "host's CPU time its hypervisor gave to other machines during a run (from /proc/stat): it slows",
        "every process without showing in their CPU time, so compare throughput across runs only at",
        "similar steal, and CPU cost per transaction (txs per node-CPU-second) at any. A ramp step",
        "that fails at more than 20% steal is run again, up to twice (`--steal-max`); every attempt",
        "stays in the ramp's table.",
        "",
        "## Targets",
        "",
        *_targets(outcomes),
        "",
        "## Results",
        "",
    ]
    out += ["Commands, one per case:", "", "```"]
    out += [c.command() for c, _ in outcomes]
    out += ["```", ""]
    for _, o in outcomes:
        if o.ramp is not None:
            out += [
                f"### Ramp: {o.label}",
                "",
                f"Max sustainable rate: {o.ramp.max_rate} tx/s.",
                "",
                markdown_ramp(o.ramp),
                "",
            ]
    runs: list[tuple[str, RunResult]] = [(o.label, o.run) for _, o in outcomes if o.run is not None]
    out += [
        "### Runs (confirmation runs after a ramp, fixed-rate runs otherwise)",
        "",
        markdown_table(runs),
        "",
    ]
    transfer = [(lbl, r) for lbl, r in runs if r.workload == "transfer"]
    if transfer:
        names = charts(assets, "transfer", transfer)
        out += [f"![{n}]({assets.name}/{n})" for n in names]
        out.append("")
    profiles = [(o.label, o.profile) for _, o in outcomes if o.profile]
    if profiles:
        out += ["## Profiles (py-spy, confirmation runs)", ""]
        for label, prof in profiles:
            for node, costs in sorted(prof.items())[:1]:
                out += [f"### {label}: {node}, hottest functions (self time, % of samples)", ""]
                out += ["| function | self % |", "|---|---:|"]
                out += [f"| `{fn}` | {pct} |" for fn, pct in costs["self"][:12]]
                out += ["", "| function | inclusive % |", "|---|---:|"]
                out += [f"| `{fn}` | {pct} |" for fn, pct in costs["inclusive"][:12]]
                out.append("")
    out += _scale_section(scale)
    out += ["## Analysis", "", analysis, ""]
    return "\n".join(out)


def _scale_section(scale: list[ScaleResult]) -> list[str]:
    out = [
        "## Beyond one machine: simulated scaling",
        "",
        "`consortia bench --sim-scale --consensus raft,pbft --sim-nodes 4,16,64,100` drives the real",
        "engines in the deterministic simulator, fault-free, with node i in region i mod 5 and one-way",
        "link latency between regions (ms, plus 0-5 ms jitter):",
        "",
        "| | " + " | ".join(REGIONS) + " |",
        "|---|" + "---:|" * len(REGIONS),
    ]
    for name, row in zip(REGIONS, WAN_ONE_WAY_MS, strict=True):
        out.append(f"| {name} | " + " | ".join(str(x) for x in row) + " |")
    out += [
        "",
        "The load is one 250-byte signed transaction every 5 ms for 2 s (blocks of at most 100), after a",
        "1.5 s warm-up that is not charged to the blocks. Messages and bytes count every copy sent to",
        "every peer; latency is submit to durable on a majority of nodes, in simulated time.",
        "",
        "| engine | nodes | blocks | messages/block | KiB/block | commit p50 ms | commit p99 ms | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scale:
        out.append(
            f"| {r.engine} | {r.nodes} | {r.blocks} | {r.msgs_per_block:,.1f} | {r.kib_per_block:,.1f} | "
            f"{r.latency_p50_ms} | {r.latency_p99_ms} | {r.wall_s} |"
        )
    out.append("")
    return out


def summary_json(outcomes: list[tuple[Case, Outcome]]) -> dict[str, Any]:
    """Every case's JSON (as `--json` prints it), without the per-second timelines."""
    out = {}
    for case, o in outcomes:
        doc = o.summary()
        doc.pop("timeline", None)
        if isinstance(doc.get("ramp"), dict) and isinstance(doc["ramp"].get("best"), dict):
            doc["ramp"]["best"].pop("timeline", None)
        out[o.label] = {"command": case.command(), **doc}
    return out
