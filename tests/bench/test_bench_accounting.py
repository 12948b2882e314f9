"""End to end against a real Solo network: every submitted transaction is accounted for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consortia.bench.report import write_report
from consortia.bench.runner import Harness, RunOptions
from consortia.bench.target import Target, from_network_dir, stand_up
from consortia.cli.main import app

JSON_KEYS = {
    "tps",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "lost",
    "rejected",
}


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("bench-solo") / "net"
    with stand_up("solo", 2, base, wait_ms=20) as target:
        yield target


def test_every_transaction_is_found(solo: Target, tmp_path: Path) -> None:
    with Harness(solo, RunOptions(workload="transfer", workers=2, drain_s=20)) as h:
        r = h.run(300, 1.0)
    assert r.submitted == 300
    assert (r.committed, r.rejected, r.lost) == (300, 0, 0)
    assert len(r.latencies_ms) == 300 and all(x > 0 for x in r.latencies_ms)
    assert r.tps > 0 and r.blocks >= 1 and r.block_txs_mean > 0
    assert r.failed_receipts_sampled == 0 and r.receipts_sampled > 0
    node = r.nodes_usage[0]
    assert node.cpu_s is not None and node.cpu_s > 0
    assert node.rss_peak_mib is not None and node.rss_peak_mib > 10
    assert node.disk_bytes is not None and node.disk_bytes > 0
    report = write_report(tmp_path / "rep", "t", [("solo", r)], "consortia bench", {"nproc": 2})
    assert "| committed | 300 |" in report.read_text()
    assert (tmp_path / "rep" / "run-throughput.png").read_bytes().startswith(b"\x89PNG")


def test_cli_json_against_the_network(solo: Target) -> None:
    assert solo.base is not None
    assert from_network_dir(solo.base).urls == solo.urls
    out = CliRunner().invoke(
        app,
        [
            "bench",
            "--network",
            str(solo.base),
            "--workload",
            "kv_write",
            "--rate",
            "200",
            "--duration",
            "1",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data.keys() >= JSON_KEYS
    assert (data["submitted"], data["committed"], data["lost"], data["rejected"]) == (200, 200, 0, 0)
    assert data["workload"] == "kv_write" and data["latency_p99_ms"] >= data["latency_p50_ms"] > 0
    host = data["host_cpu"]
    assert host.keys() == {"busy_pct", "idle_pct", "steal_pct"} and host["busy_pct"] > 0
    assert abs(sum(host.values()) - 100) < 0.5
