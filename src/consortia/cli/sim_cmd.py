"""`consortia sim`: run the deterministic simulator over one seed or a sweep of seeds."""

from __future__ import annotations

import typer
from rich.table import Table

from consortia.cli.common import JSON_OPT, console, err_console, fail, print_json


def sim(
    engine: str = typer.Option(..., "--engine", help="Consensus engine: solo, raft or pbft."),
    nodes: int = typer.Option(..., "--nodes", help="Validators in the simulated network."),
    byzantine: int = typer.Option(0, "--byzantine", help="Byzantine validators (BFT engines only)."),
    crashed: int = typer.Option(0, "--crashed", help="Validators that crash and restart."),
    seeds: int = typer.Option(100, "--seeds", help="Seeds to sweep (from --start)."),
    seed: int = typer.Option(None, "--seed", help="Replay exactly this one seed."),
    start: int = typer.Option(0, "--start", help="First seed of the sweep."),
    amnesia: bool = typer.Option(
        False, "--amnesia", help="Crashed nodes may restart with an empty data directory."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Drive a consensus engine through seeded faults and check agreement, validity,
    durability and liveness. Exit code 1 when any run breaks a checker."""
    from consortia.sim import SimError, run, sweep

    try:
        if seed is not None:
            result = run(seed, engine, nodes, byzantine, crashed, amnesia=amnesia)
            if as_json:
                print_json(result.as_dict())
            else:
                _print_run(result.as_dict())
            if result.violations:
                raise typer.Exit(1)
            return
        if seeds <= 0 or start < 0:
            fail("--seeds must be positive and --start non-negative")
        with err_console.status(f"simulating {seeds} seeds of {engine}...") as status:

            def progress(r: object) -> None:
                status.update(f"simulating {engine}: seed {getattr(r, 'seed', '?')} of {start + seeds - 1}")

            summary = sweep(
                range(start, start + seeds),
                engine,
                nodes,
                byzantine,
                crashed,
                amnesia=amnesia,
                on_result=None if as_json else progress,
            )
    except SimError as exc:
        fail(str(exc))
    data = summary.as_dict()
    if as_json:
        print_json(data)
    else:
        _print_sweep(data)
    if summary.failed:
        raise typer.Exit(1)


def _print_run(d: dict[str, object]) -> None:
    table = Table(title=f"{d['engine']} seed {d['seed']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "nodes",
        "byzantine",
        "crashed",
        "blocks_committed",
        "engine_messages",
        "msgs_per_block",
        "latency_p50_ms",
        "latency_p99_ms",
        "recovery_ms",
        "sim_time_ms",
        "trace_hash",
    ):
        table.add_row(key, str(d[key]))
    faults = d["faults"]
    if isinstance(faults, dict):
        for key, value in faults.items():
            table.add_row(f"fault: {key}", str(value))
    console.print(table)
    violations = d["violations"]
    if isinstance(violations, list) and violations:
        console.print(f"[red]{len(violations)} violation(s)[/red]")
        for v in violations:
            console.print(f"  {v}")
        console.print(f"replay: {d['replay']}")
    else:
        console.print("[green]no violations[/green]")


def _print_sweep(d: dict[str, object]) -> None:
    table = Table(
        title=f"{d['engine']}: {d['nodes']} nodes, {d['byzantine']} byzantine, {d['crashed']} crashed"
    )
    table.add_column("runs", justify="right")
    table.add_column("violations", justify="right")
    table.add_column("blocks committed", justify="right")
    table.add_column("msgs/block", justify="right")
    table.add_column("latency p50 ms", justify="right")
    table.add_column("latency p99 ms", justify="right")
    table.add_column("max recovery ms", justify="right")
    table.add_row(
        str(d["runs"]),
        f"{d['violations']} in {d['failed_runs']} runs",
        str(d["blocks_committed"]),
        str(d["msgs_per_block"]),
        str(d["latency_p50_ms"]),
        str(d["latency_p99_ms"]),
        str(d["recovery_max_ms"]),
    )
    console.print(table)
    failures = d["failures"]
    if isinstance(failures, list):
        for f in failures:
            console.print(f"[red]seed {f['seed']}[/red]: {f['violations'][0]}")
            console.print(f"  replay: {f['replay']}")
    console.print(f"wall time {d['wall_ms']} ms")
