"""`consortia bench`: throughput and latency of a network under a workload, reproducibly."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from consortia.cli.common import JSON_OPT, console, err_console, fail, print_json

ENGINES = ("solo", "raft", "pbft")


def bench(
    workload: str = typer.Option(
        "transfer",
        "--workload",
        help="transfer, kv_write, contract_call, query, erc20_transfer, or a workload .py file.",
    ),
    rate: float = typer.Option(
        None, "--rate", help="Fixed open-loop rate, tx/s (default 2000 without --ramp)."
    ),
    duration: float = typer.Option(
        30.0, "--duration", help="Seconds of load per run (the confirmation run after a ramp)."
    ),
    txs: int = typer.Option(None, "--txs", help="Instead of --duration: this many transactions at --rate."),
    ramp: bool = typer.Option(False, "--ramp", help="Step the rate up to find the maximum sustainable rate."),
    ramp_start: float = typer.Option(1000.0, "--ramp-start", help="First rate of the ramp, tx/s."),
    ramp_factor: float = typer.Option(1.5, "--ramp-factor", help="Rate multiplier between ramp steps."),
    step_s: float = typer.Option(8.0, "--step-s", help="Seconds of load per ramp step."),
    latency_bound_ms: float = typer.Option(
        2000.0, "--latency-bound-ms", help="p99 above this is not sustainable."
    ),
    steal_max: float = typer.Option(
        20.0,
        "--steal-max",
        help="A ramp step that fails while the hypervisor steals more than this % of the host's CPU"
        " is run again, up to twice (100: never).",
    ),
    confirm: float = typer.Option(
        0.8, "--confirm", help="After a ramp, run --duration at this share of the max (0: skip)."
    ),
    network: Path = typer.Option(None, "--network", help="Measure the running network in this directory."),
    url: str = typer.Option(None, "--url", help="Measure one running node by URL (needs --crypto)."),
    crypto: Path = typer.Option(
        None, "--crypto", help="Crypto directory of the node's consortium (with --url)."
    ),
    up: bool = typer.Option(
        False, "--up", help="Stand up a fresh network, measure, tear it down (the default)."
    ),
    orgs: int = typer.Option(4, "--orgs", help="Organisations of the network --up creates."),
    consensus: str = typer.Option("solo", "--consensus", help="solo, raft, pbft, a comma list, or all."),
    dir: Path = typer.Option(
        None, "--dir", help="With --up: create the network here and keep it afterwards."
    ),
    workers: int = typer.Option(2, "--workers", help="Client processes generating the load."),
    batch_ms: int = typer.Option(50, "--batch-ms", help="Each client submits one batch per interval."),
    drain_s: float = typer.Option(30.0, "--drain-s", help="How long to wait for the last commits."),
    report: Path = typer.Option(None, "--report", help="Write report.md and PNG charts into this directory."),
    profile: Path = typer.Option(
        None, "--profile", help="Sample every node with py-spy during the run (needs py-spy)."
    ),
    profile_gil: bool = typer.Option(
        False, "--profile-gil", help="With --profile: only samples holding the GIL (serial Python work)."
    ),
    sim_scale: bool = typer.Option(
        False, "--sim-scale", help="Simulate raft and pbft at --sim-nodes under a WAN model."
    ),
    sim_nodes: str = typer.Option("4,16,64,100", "--sim-nodes", help="Node counts for --sim-scale."),
    suite: Path = typer.Option(None, "--suite", help="Run the standard suite and write its Markdown here."),
    as_json: bool = JSON_OPT,
) -> None:
    """Measure committed TPS, commit latency (p50/p95/p99/max), rejected and lost transactions,
    CPU, peak RSS and disk per node. Transactions are signed before the timed phase."""
    import signal

    from consortia.bench.errors import BenchError

    # A plain SIGTERM would skip the `finally` that stops a network this command stood up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if suite is not None:
            from consortia.bench.suite import run_suite

            run_suite(suite, " ".join(["consortia", *map(shlex.quote, sys.argv[1:])]), say=_say)
            console.print(f"wrote {suite}")
            return
        if sim_scale:
            _sim_scale(consensus, sim_nodes, as_json)
            return
        _bench(
            workload,
            rate,
            duration,
            txs,
            ramp,
            ramp_start,
            ramp_factor,
            step_s,
            latency_bound_ms,
            steal_max,
            confirm,
            network,
            url,
            crypto,
            up,
            orgs,
            consensus,
            dir,
            workers,
            batch_ms,
            drain_s,
            report,
            profile,
            profile_gil,
            as_json,
        )
    except BenchError as exc:
        fail(str(exc))


def _say(message: str) -> None:
    err_console.print(f"[dim]{message}[/dim]")


def _engines(consensus: str) -> list[str]:
    names = list(ENGINES) if consensus == "all" else [c.strip() for c in consensus.split(",") if c.strip()]
    for name in names:
        if name not in ENGINES:
            fail(f"--consensus must be solo, raft, pbft, a comma list of them, or all (not {name!r})")
    return names


def _bench(
    workload: str,
    rate: float | None,
    duration: float,
    txs: int | None,
    ramp: bool,
    ramp_start: float,
    ramp_factor: float,
    step_s: float,
    latency_bound_ms: float,
    steal_max: float,
    confirm: float,
    network: Path | None,
    url: str | None,
    crypto: Path | None,
    up: bool,
    orgs: int,
    consensus: str,
    dir: Path | None,
    workers: int,
    batch_ms: int,
    drain_s: float,
    report: Path | None,
    profile: Path | None,
    profile_gil: bool,
    as_json: bool,
) -> None:
    from consortia.bench.procstats import machine
    from consortia.bench.ramp import RampOptions
    from consortia.bench.runner import RunOptions
    from consortia.bench.session import BenchOptions, Outcome, bench_target
    from consortia.bench.target import from_network_dir, from_url, stand_up

    if sum(1 for chosen in (network is not None, url is not None, up) if chosen) > 1:
        fail("use one of --network, --url or --up")
    if url is not None and crypto is None:
        fail("--url needs --crypto (the load is signed with that consortium's identities)")
    fixed_rate = rate if rate is not None else 2000.0
    if txs is not None:
        if txs <= 0:
            fail("--txs must be positive")
        duration = txs / fixed_rate
    if duration <= 0:
        fail("--duration must be positive")
    options = BenchOptions(
        run=RunOptions(workload=workload, workers=workers, batch_ms=batch_ms, drain_s=drain_s),
        rate=fixed_rate,
        duration_s=duration,
        ramp=RampOptions(
            ramp_start, ramp_factor, step_s, latency_bound_ms=latency_bound_ms, steal_max_pct=steal_max
        )
        if ramp
        else None,
        confirm_fraction=confirm,
        profile_dir=profile,
        profile_gil=profile_gil,
    )
    if options.ramp is not None:
        options.ramp.validate()  # before anything is stood up
    say = _say  # progress goes to stderr, so --json output stays clean
    outcomes: list[Outcome] = []
    if network is not None:
        target = from_network_dir(network)
        outcomes.append(bench_target(target, target.consensus, options, say))
    elif url is not None:
        assert crypto is not None
        outcomes.append(bench_target(from_url(url, crypto), "node", options, say))
    else:
        engines = _engines(consensus)
        for engine in engines:
            say(f"standing up a {engine} network of {orgs} organisations...")
            base = None if dir is None else (dir if len(engines) == 1 else dir / engine)
            with stand_up(engine, orgs, base) as target:
                outcomes.append(bench_target(target, engine, options, say))
    _output(outcomes, as_json, report, machine())


def _output(outcomes: list[Any], as_json: bool, report: Path | None, machine: dict[str, Any]) -> None:
    from consortia.bench.report import PRESIGNED_NOTE, ramp_table, table, write_report

    runs = [(o.label, o.run) for o in outcomes if o.run is not None]
    ramps = [(o.label, o.ramp) for o in outcomes if o.ramp is not None]
    if report is not None:
        command = " ".join(["consortia", *map(shlex.quote, sys.argv[1:])])
        path = write_report(report, "consortia bench", runs, command, machine, ramps)
        if not as_json:
            console.print(f"report: {path}")
    if as_json:
        if len(outcomes) == 1:
            print_json(outcomes[0].summary())
        else:
            print_json({"runs": {o.label: o.summary() for o in outcomes}, "machine": machine})
        return
    for label, r in ramps:
        console.print(ramp_table(r, f"{label}: ramp (max sustainable {r.max_rate} tx/s)"))
    if runs:
        console.print(table(runs, runs[0][1].workload))
    console.print(f"[dim]{PRESIGNED_NOTE}[/dim]")


def _sim_scale(consensus: str, sim_nodes: str, as_json: bool) -> None:
    from rich.table import Table

    from consortia.bench.simscale import run_scale
    from consortia.sim import SimError

    engines = [e for e in _engines("raft,pbft" if consensus == "solo" else consensus) if e != "solo"]
    try:
        counts = [int(x) for x in sim_nodes.split(",") if x.strip()]
    except ValueError:
        fail("--sim-nodes is a comma list of node counts")
    results = []
    try:
        for engine in engines:
            for n in counts:
                _say(f"simulating {engine} with {n} nodes...")
                results.append(run_scale(engine, n))
    except SimError as exc:
        fail(str(exc))
    if as_json:
        print_json([r.as_dict() for r in results])
        return
    t = Table(title="simulated scaling (WAN latency model, fault-free)")
    for col in ("engine", "nodes", "blocks", "msgs/block", "KiB/block", "p50 ms", "p99 ms", "wall s"):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(
            r.engine,
            str(r.nodes),
            str(r.blocks),
            f"{r.msgs_per_block:,.1f}",
            f"{r.kib_per_block:,.1f}",
            str(r.latency_p50_ms),
            str(r.latency_p99_ms),
            str(r.wall_s),
        )
    console.print(t)
