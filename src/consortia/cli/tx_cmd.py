"""`consortia tx`, `block`, `state` and `chain`: talk to a running node."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from consortia.cli.common import (
    CHANNEL_OPT,
    CRYPTO_OPT,
    JSON_OPT,
    ORG_OPT,
    URL_OPT,
    USER_OPT,
    console,
    handled,
    load_identity,
    parse_args,
    print_json,
)

if TYPE_CHECKING:
    from consortia.sdk import Client

tx_app = typer.Typer(help="Submit and inspect transactions.", no_args_is_help=True)
block_app = typer.Typer(help="Read blocks.", no_args_is_help=True)
state_app = typer.Typer(help="Read state, with proofs and history.", no_args_is_help=True)
chain_app = typer.Typer(help="Chain information.", no_args_is_help=True)


def _client(
    url: str,
    channel: str,
    crypto: Path | None = None,
    org: str | None = None,
    user: str | None = None,
    signing: bool = False,
) -> Client:
    from consortia.sdk import Client

    identity = load_identity(crypto, org, user) if signing else None
    return Client(url, identity, channel)


@tx_app.command("invoke")
def invoke(
    contract: str,
    method: str,
    args: list[str] = typer.Argument(None),
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    crypto: Path = CRYPTO_OPT,
    org: str = ORG_OPT,
    user: str = USER_OPT,
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    as_json: bool = JSON_OPT,
) -> None:
    """Sign and submit a contract call; waits for the commit by default."""
    with handled(), _client(url, channel, crypto, org, user, signing=True) as client:
        out = client.invoke(contract, method, *parse_args(args or []), wait=wait)
    if as_json:
        print_json(out)
        return
    receipt = out.get("receipt")
    if receipt is None:
        console.print(f"tx {out['tx_id']} [yellow]{out['status']}[/yellow]")
        return
    color = "green" if receipt["status"] == "ok" else "red"
    console.print(
        f"tx {out['tx_id']} [{color}]{receipt['status']}[/{color}] at height {out['height']}"
        + (f": {receipt['error']}" if receipt["error"] else "")
    )
    if receipt["result"] is not None:
        console.print(receipt["result"])
    if receipt["status"] != "ok":
        raise typer.Exit(1)


@tx_app.command("status")
def status(tx_id: str, url: str = URL_OPT, channel: str = CHANNEL_OPT, as_json: bool = JSON_OPT) -> None:
    """Show a transaction's status and receipt."""
    with handled(), _client(url, channel) as client:
        out = client.status(tx_id)
    if as_json:
        print_json(out)
    else:
        console.print(out)


@tx_app.command("query")
def query(
    contract: str,
    method: str,
    args: list[str] = typer.Argument(None),
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Run a read-only contract method."""
    with handled(), _client(url, channel) as client:
        result = client.query(contract, method, *parse_args(args or []))
    if as_json:
        from consortia.api.jsonview import plain

        print_json({"result": plain(result)})
    else:
        console.print(result)


@block_app.command("get")
def block_get(height: int, url: str = URL_OPT, channel: str = CHANNEL_OPT, as_json: bool = JSON_OPT) -> None:
    """Show a block by height."""
    with handled(), _client(url, channel) as client:
        block = client.block(height)
    if as_json:
        print_json(block)
        return
    h = block["header"]
    table = Table(title=f"block {h['height']}")
    table.add_column("field")
    table.add_column("value")
    for k, v in h.items():
        table.add_row(k, str(v))
    console.print(table)
    for tx in block.get("transactions", []):
        console.print(f"  {tx['tx_id'][:16]}  {_tx_summary(tx)}", markup=False, soft_wrap=True)


def _tx_summary(tx: dict[str, Any]) -> str:
    """One line for a native call or an Ethereum transaction (as the block API lists them)."""
    if tx.get("kind") == "eth":
        to = tx["to"] or "(contract creation)"
        size = (len(tx["data"]) - 2) // 2
        return f"eth {tx['from']} -> {to} nonce {tx['nonce']} value {tx['value']} data {size} bytes"
    return f"{tx['contract']}.{tx['method']}({tx['args']})"


COMPOSITE_OPT = typer.Option(
    False, "--composite", help="KEY is TYPE/ATTR/...: read the composite key built from those parts."
)


def _key(key: str, composite: bool) -> str:
    if not composite:
        return key
    from consortia.execution.keys import composite_key

    kind, *attrs = key.split("/")
    return composite_key(kind, *attrs)


@state_app.command("get")
def state_get(
    contract: str,
    key: str,
    composite: bool = COMPOSITE_OPT,
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Read a value and verify its Merkle proof and the block's commit certificate locally."""
    display_key = key
    key = _key(key, composite)
    with handled(), _client(url, channel) as client:
        v = client.get_verified(contract, key)
    out = {
        "contract": contract,
        "key": display_key,
        "exists": v.exists,
        "value": v.value,
        "height": v.height,
        "state_root": v.state_root.hex(),
        "verified": True,
        "signed_by": v.signing_orgs,
    }
    if as_json:
        from consortia.api.jsonview import plain

        print_json(plain(out))
    else:
        console.print(out)
        console.print("[green]proof verified[/green] against the certified state root")


@state_app.command("history")
def state_history(
    contract: str,
    key: str,
    composite: bool = COMPOSITE_OPT,
    limit: int = typer.Option(100, "--limit"),
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Every version of a key, with the transaction that wrote it."""
    key = _key(key, composite)
    with handled(), _client(url, channel) as client:
        versions = client.history(contract, key, limit)
    if as_json:
        print_json({"versions": versions})
        return
    table = Table(title=f"{contract}/{key!r}")
    for col in ("height", "tx", "value"):
        table.add_column(col)
    for v in versions:
        table.add_row(str(v["height"]), v["tx_id"][:16], "<deleted>" if v["deleted"] else str(v["value"]))
    console.print(table)


@chain_app.command("info")
def chain_info(url: str = URL_OPT, channel: str = CHANNEL_OPT, as_json: bool = JSON_OPT) -> None:
    """Height, head hash and state root of the node's channel."""
    with handled(), _client(url, channel) as client:
        out = client.info()
    if as_json:
        print_json(out)
    else:
        for k, v in out.items():
            console.print(f"[bold]{k}[/bold]: {v}")
