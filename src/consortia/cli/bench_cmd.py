"""`consortia bench`: measure signed token-transfer throughput."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from consortia.cli.common import JSON_OPT, console, fail, print_json


def bench(
    txs: int = typer.Option(20_000, "--txs", help="Transfers to submit (signed before timing starts)."),
    url: str = typer.Option(None, "--url", help="Measure a running node instead of a fresh one."),
    crypto: Path = typer.Option(None, "--crypto", help="Crypto directory of the running node's consortium."),
    as_json: bool = JSON_OPT,
) -> None:
    """Committed transfers per second on one node (a fresh Solo node unless --url is given)."""
    from consortia.bench.transfers import measure, measure_fresh_node

    if txs <= 0:
        fail("--txs must be positive")
    if url is not None and crypto is None:
        fail("--url needs --crypto (the accounts are funded and signed with its identities)")
    with console.status(f"submitting {txs} signed transfers..."):
        try:
            report = measure(url, crypto, txs) if url else measure_fresh_node(txs)
        except RuntimeError as exc:
            fail(str(exc))
    if as_json:
        print_json(report.as_dict())
        return
    table = Table(title="signed token transfers, one node")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in report.as_dict().items():
        table.add_row(k, str(v))
    console.print(table)
