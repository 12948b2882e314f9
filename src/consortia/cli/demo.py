"""`consortia demo`: food traceability across four organisations, end to end, on a real node.

Generates the consortium's certificates, starts a node process, deploys the traceability
contract through the lifecycle policy, walks one batch of produce from the farm to the
retailer as transactions signed by four organisations, and prints the provenance with
a locally verified proof for every step and for the current state.
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


def run_demo(base: Path) -> dict[str, object]:
    from consortia.cli.contract_cmd import deploy_contract
    from consortia.cli.node_cmd import init_single_node
    from consortia.cli.procs import free_port, start_node_process, stop_node_process, wait_healthy
    from consortia.identity.cryptogen import generate_consortium
    from consortia.identity.wallet import load_signing_identity
    from consortia.sdk import Client

    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    crypto = base / "crypto"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    summary: dict[str, object] = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as prog:
        task = prog.add_task("generating certificates for 4 organisations")
        generate_consortium(crypto, ORGS)
        prog.update(task, description="creating the channel's genesis block")
        config = init_single_node(crypto, ORGS, base / "network", "farm", port=port, wait_ms=20)
        prog.update(task, description=f"starting node peer0.farm on {url}")
        proc = start_node_process(config, base / "node.log")
        try:
            wait_healthy(url, proc)
            prog.update(task, description="deploying the traceability contract (3 of 4 org admins approve)")
            deploy_contract(url, "main", crypto, ORGS[:3], "traceability", "1", traceability_source())
            clients = {
                org: Client(url, load_signing_identity(crypto, org, f"client0@{org}"), "main") for org in ORGS
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
            prog.update(task, description="verifying proofs locally")
            reader = Client(url, None, "main")
            provenance = reader.query("traceability", "provenance", batch)
            proofs = [(org, method, tid, *reader.verify_tx(tid)) for org, method, tid in tx_ids]
            record_key = _batch_key(batch)
            verified = reader.get_verified("traceability", record_key)
            info = reader.info()
            for c in [*clients.values(), reader]:
                c.close()
        finally:
            code = stop_node_process(proc)
    _print_report(batch, provenance, proofs, verified, info)
    summary.update(
        batch=batch,
        steps=len(provenance),
        proofs=len(proofs),
        height=info["height"],
        state_root=info["state_root"],
        node_exit_code=code,
    )
    if code != 0:
        fail(f"the node did not shut down cleanly (exit code {code}); see {base / 'node.log'}")
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


def demo(dir: Path = typer.Option(Path(".demo"), "--dir", help="Working directory (recreated).")) -> None:
    """Run the food-traceability scenario on a fresh single-node consortium."""
    from consortia.sdk import ApiError, VerificationError

    try:
        run_demo(dir)
    except (ApiError, VerificationError, RuntimeError) as exc:
        fail(str(exc))
    console.print("[bold green]demo complete[/bold green]")
