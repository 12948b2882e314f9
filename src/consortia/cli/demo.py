"""`consortia demo`: food traceability across four organisations, end to end, on a real network.

Generates the consortium's certificates, starts one node process per organisation (PBFT by
default), deploys the traceability contract through the lifecycle policy, walks one batch
of produce from the farm to the retailer as transactions signed by four organisations, each
through its own node, and prints the provenance with a locally verified proof for every
step and for the current state.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from consortia.cli.common import console, fail

ORGS = ["farm", "processor", "distributor", "retailer"]
CHAIN = [
    # (holder org, its step when handing over, location, next org, next org's receive step/location)
    ("farm", "harvested and packed", "Green Valley Farm, field 7"),
    ("processor", "washed, graded, cold-stored", "FreshCo plant, Rotterdam"),
    ("distributor", "shipped in reefer truck at 4 C", "Northern Logistics hub, Hamburg"),
    ("retailer", "on shelf", "City Market, store 112"),
]


def traceability_source() -> str:
    return resources.files("consortia.contracts").joinpath("traceability.py").read_text()


def run_demo(base: Path, consensus: str = "pbft") -> dict[str, object]:
    """Run the scenario on a fresh network under `base`; every organisation uses its own node."""
    from consortia.cli.contract_cmd import deploy_contract
    from consortia.cli.network_cmd import create_network, save_state, start_network
    from consortia.cli.procs import stop_node_process
    from consortia.identity.wallet import load_signing_identity
    from consortia.sdk import Client

    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    net = base / "network"
    crypto = net / "crypto"
    summary: dict[str, object] = {}
    procs = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as prog:
        task = prog.add_task(f"generating certificates and a {consensus} channel for 4 organisations")
        entries = create_network(net, ORGS, consensus, wait_ms=20)
        urls = {org: next((e.api for e in entries if e.org == org), entries[0].api) for org in ORGS}
        try:
            prog.update(task, description=f"starting {len(entries)} node(s) and waiting for consensus")
            procs = start_network(net, entries)
            save_state(net, consensus, entries)
            prog.update(task, description="deploying the traceability contract (3 of 4 org admins approve)")
            deploy_contract(urls, "main", crypto, ORGS[:3], "traceability", "1", traceability_source())
            clients = {
                org: Client(urls[org], load_signing_identity(crypto, org, f"client0@{org}"), "main")
                for org in ORGS
            }
            batch = "BATCH-2026-0042"
            tx_ids: list[tuple[str, str, Any]] = []
            prog.update(task, description="farm registers the batch")
            out = _ok(
                clients["farm"].invoke(
                    "traceability", "create_batch", batch, "organic apples", CHAIN[0][2], 1200
                )
            )
            tx_ids.append(("farm", "create_batch", out["tx_id"]))
            for i in range(len(CHAIN) - 1):
                holder, step, location = CHAIN[i]
                nxt, _, nxt_location = CHAIN[i + 1]
                prog.update(task, description=f"{holder} hands the batch to {nxt}")
                out = _ok(clients[holder].invoke("traceability", "transfer", batch, nxt, step, location))
                tx_ids.append((holder, "transfer", out["tx_id"]))
                prog.update(task, description=f"{nxt} confirms receipt")
                out = _ok(clients[nxt].invoke("traceability", "receive", batch, "received", nxt_location))
                tx_ids.append((nxt, "receive", out["tx_id"]))
            prog.update(task, description="verifying proofs locally against the genesis block")
            # The retailer checks everything through its own node, trusting only the genesis block.
            reader = Client(urls["retailer"], None, "main")
            provenance = reader.query("traceability", "provenance", batch)
            proofs = [(org, method, tid, *reader.verify_tx(tid)) for org, method, tid in tx_ids]
            verified = reader.get_verified("traceability", _batch_key(batch))
            info = reader.info()
            for c in [*clients.values(), reader]:
                c.close()
        finally:
            codes = [stop_node_process(p) for p in procs]
    _print_report(batch, provenance, proofs, verified, info)
    summary.update(
        batch=batch,
        steps=len(provenance),
        proofs=len(proofs),
        height=info["height"],
        state_root=info["state_root"],
        node_exit_codes=codes,
        certified_by=verified.signing_orgs,
    )
    if any(codes):
        fail(f"a node did not shut down cleanly (exit codes {codes}); see the logs under {net / 'nodes'}")
    return summary


def _batch_key(batch: str) -> str:
    from consortia.execution.keys import composite_key

    return composite_key("batch", batch)


def _ok(out: dict[str, Any]) -> dict[str, Any]:
    receipt = out.get("receipt")
    if not isinstance(receipt, dict) or receipt.get("status") != "ok":
        raise RuntimeError(f"transaction did not commit cleanly: {out}")
    return out


def _print_report(
    batch: str,
    provenance: list[dict[str, Any]],
    proofs: list[tuple[Any, ...]],
    verified: Any,
    info: dict[str, Any],
) -> None:
    table = Table(title=f"Provenance of {batch}")
    for col in ("#", "organisation", "step", "location", "height"):
        table.add_column(col)
    for i, step in enumerate(provenance, 1):
        table.add_row(
            str(i),
            str(step.get("org")),
            str(step.get("step")),
            str(step.get("location")),
            str(step.get("height")),
        )
    console.print(table)
    ptable = Table(title="Every step is in the ledger (Merkle inclusion proofs, verified locally)")
    for col in ("signed by", "call", "tx id", "block", "index", "block certified by"):
        ptable.add_column(col)
    for org, method, tid, height, index, orgs in proofs:
        ptable.add_row(str(org), str(method), str(tid)[:16] + "...", str(height), str(index), ", ".join(orgs))
    console.print(ptable)
    v = verified
    console.print(
        Panel(
            f"batch record proven against state root {v.state_root.hex()[:24]}... "
            f"of block {v.height}, certified by {', '.join(v.signing_orgs)}\n"
            f"current holder: {v.value.get('holder')}; chain head {str(info['head_hash'])[:24]}... "
            f"at height {info['height']}",
            title="state proof verified",
            border_style="green",
        )
    )


def demo(
    dir: Path = typer.Option(Path(".demo"), "--dir", help="Working directory (recreated)."),
    consensus: str = typer.Option("pbft", "--consensus", help="pbft, raft or solo."),
) -> None:
    """Run the food-traceability scenario on a fresh 4-organisation network."""
    from consortia.sdk import ApiError, VerificationError

    try:
        run_demo(dir, consensus)
    except (ApiError, VerificationError, RuntimeError, ValueError) as exc:
        fail(str(exc))
    console.print("[bold green]demo complete[/bold green]")
