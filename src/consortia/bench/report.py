"""Presenting runs: a rich table, side by side for several runs, and a Markdown + PNG report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from consortia.bench.charts import Series, bar_chart, line_chart
from consortia.bench.png import write_png
from consortia.bench.ramp import RampResult
from consortia.bench.results import RunResult

PRESIGNED_NOTE = (
    "Every transaction was signed before its timed phase (the load generator only submits), "
    "so the figures measure the platform: admission, signature checks, ordering, execution "
    "and durable commit."
)


def _v(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        x = f"{x:,.1f}"
    elif isinstance(x, int):
        x = f"{x:,}"
    return f"{x}{unit}"


def _sum_opt(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return round(sum(vals), 2) if vals else None


def _max_opt(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return max(vals) if vals else None


ROWS: list[tuple[str, Callable[[RunResult], str]]] = [
    ("workload", lambda r: r.workload),
    ("consensus / nodes", lambda r: f"{r.consensus} / {r.nodes}"),
    ("offered rate /s", lambda r: _v(r.offered_rate)),
    ("duration s", lambda r: _v(float(r.duration_s))),
    ("committed TPS", lambda r: _v(r.tps)),
    ("submitted", lambda r: _v(r.submitted)),
    ("committed", lambda r: _v(r.committed)),
    ("rejected", lambda r: _v(r.rejected) + (f" {r.rejected_by_code}" if r.rejected else "")),
    ("lost", lambda r: _v(r.lost)),
    ("latency p50 ms", lambda r: _v(r.latency_ms.get("p50"))),
    ("latency p95 ms", lambda r: _v(r.latency_ms.get("p95"))),
    ("latency p99 ms", lambda r: _v(r.latency_ms.get("p99"))),
    ("latency max ms", lambda r: _v(r.latency_ms.get("max"))),
    (
        "p99 ms by node submitted to",
        lambda r: " / ".join(_v(v.get("p99")) for v in r.latency_by_node.values()),
    ),
    ("blocks", lambda r: _v(r.blocks)),
    ("txs per block", lambda r: _v(r.block_txs_mean)),
    ("block KiB", lambda r: _v(r.block_bytes_mean / 1024)),
    ("tx bytes (raw)", lambda r: _v(r.tx_bytes_mean)),
    ("disk per tx (bytes/node)", lambda r: _v(r.disk_per_tx_bytes)),
    ("disk / raw tx bytes", lambda r: _v(r.disk_to_raw_ratio)),
    ("node CPU s (sum)", lambda r: _v(_sum_opt([u.cpu_s for u in r.nodes_usage]))),
    ("node CPU % (max node)", lambda r: _v(_max_opt([u.cpu_pct for u in r.nodes_usage]))),
    ("node peak RSS MiB (max)", lambda r: _v(_max_opt([u.rss_peak_mib for u in r.nodes_usage]))),
    ("node anon RSS MiB at end (max)", lambda r: _v(_max_opt([u.rss_anon_end_mib for u in r.nodes_usage]))),
    ("txs per node-CPU-second", lambda r: _v(r.txs_per_node_cpu_s)),
    ("client CPU s", lambda r: _v(r.client_cpu_s)),
    ("max send lag ms", lambda r: _v(r.send_lag_ms_max)),
    ("host CPU busy / idle / steal %", lambda r: _host_cpu(r)),
    ("failed receipts (sample)", lambda r: f"{r.failed_receipts_sampled}/{r.receipts_sampled}"),
]


def _host_cpu(r: RunResult) -> str:
    h = r.host_cpu
    if not h:
        return "-"
    return " / ".join(_v(h.get(k)) for k in ("busy_pct", "idle_pct", "steal_pct"))


def table(results: list[tuple[str, RunResult]], title: str) -> Table:
    t = Table(title=title)
    t.add_column("measure")
    for label, _ in results:
        t.add_column(label, justify="right")
    for name, get in ROWS:
        t.add_row(name, *[get(r) for _, r in results])
    return t


def ramp_table(ramp: RampResult, title: str) -> Table:
    t = Table(title=title)
    for col in ("offered /s", "committed TPS", "p99 ms", "rejected", "lost", "host steal %", "verdict"):
        t.add_column(col, justify="right")
    for s in ramp.steps:
        r = s.result
        t.add_row(
            _v(s.rate),
            _v(r.tps),
            _v(r.latency_ms.get("p99")),
            _v(r.rejected),
            _v(r.lost),
            _v(r.host_cpu.get("steal_pct")),
            "sustainable" if s.sustainable else s.why,
        )
    return t


def markdown_table(results: list[tuple[str, RunResult]]) -> str:
    head = "| measure | " + " | ".join(label for label, _ in results) + " |"
    sep = "|---|" + "---:|" * len(results)
    rows = [f"| {name} | " + " | ".join(get(r) for _, r in results) + " |" for name, get in ROWS]
    return "\n".join([head, sep, *rows])


def markdown_ramp(ramp: RampResult) -> str:
    lines = [
        "| offered /s | committed TPS | p99 ms | rejected | lost | host steal % | verdict |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in ramp.steps:
        r = s.result
        verdict = "sustainable" if s.sustainable else s.why
        p99, steal = _v(r.latency_ms.get("p99")), _v(r.host_cpu.get("steal_pct"))
        cells = [_v(s.rate), _v(r.tps), p99, str(r.rejected), str(r.lost), steal, verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def charts(out: Path, stem: str, results: list[tuple[str, RunResult]]) -> list[str]:
    """Throughput and latency over time (all runs), and one latency histogram per run.

    Returns the PNG file names written under `out`.
    """
    out.mkdir(parents=True, exist_ok=True)
    names = []
    tput = [Series(label, [(p.t_s, float(p.committed)) for p in r.timeline]) for label, r in results]
    if len(results) == 1:
        r = results[0][1]
        tput.append(Series("submitted", [(p.t_s, float(p.submitted)) for p in r.timeline]))
    name = f"{stem}-throughput.png"
    write_png(out / name, line_chart("committed transactions per second", "seconds", "tx/s", tput))
    names.append(name)
    lat: list[Series] = []
    for label, r in results:
        lat.append(Series(f"{label} p50", [(p.t_s, p.latency_p50_ms) for p in r.timeline]))
        lat.append(Series(f"{label} p99", [(p.t_s, p.latency_p99_ms) for p in r.timeline]))
    name = f"{stem}-latency.png"
    write_png(out / name, line_chart("commit latency over time", "seconds", "ms", lat))
    names.append(name)
    for label, r in results:
        hist = r.summary()["histogram"]
        if not hist:
            continue
        width = hist[1][0] - hist[0][0] if len(hist) > 1 else 1.0
        name = f"{stem}-{_slug(label)}-histogram.png"
        write_png(
            out / name, bar_chart(f"{label}: commit latency histogram", "ms", "transactions", hist, width)
        )
        names.append(name)
    return names


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s.lower()).strip("-")


def write_report(
    out: Path,
    title: str,
    results: list[tuple[str, RunResult]],
    command: str,
    machine: dict[str, Any],
    ramps: list[tuple[str, RampResult]] | None = None,
) -> Path:
    """Write `out/report.md` plus its charts; returns the Markdown file's path."""
    out.mkdir(parents=True, exist_ok=True)
    pngs = charts(out, "run", results) if results else []
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        PRESIGNED_NOTE,
        "",
    ]
    if results:
        lines += [markdown_table(results), ""]
    for label, ramp in ramps or []:
        lines += [
            f"## Ramp: {label}",
            "",
            f"Max sustainable rate: {_v(ramp.max_rate)} tx/s",
            "",
            markdown_ramp(ramp),
            "",
        ]
    for name in pngs:
        lines += [f"![{name}]({name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
