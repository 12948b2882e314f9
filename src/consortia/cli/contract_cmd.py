"""`consortia contract`: deploy and upgrade Python contracts through the lifecycle policy."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import typer

from consortia.cli.common import (
    CHANNEL_OPT,
    CRYPTO_OPT,
    JSON_OPT,
    URL_OPT,
    console,
    fail,
    handled,
    print_json,
)

contract_app = typer.Typer(help="Deploy, approve and commit contracts.", no_args_is_help=True)


def _read_source(source: Path) -> str:
    try:
        return source.read_text()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")


def deploy_contract(
    url: str | dict[str, str],
    channel: str,
    crypto: Path,
    admin_orgs: list[str],
    name: str,
    version: str,
    source: str,
) -> dict[str, Any]:
    """Approve as each org's admin, then commit as the first. Returns the commit's result.

    `url` is one node for everyone, or each organisation's own node by org name.
    Raises the SDK's ApiError if the node refuses, or RuntimeError if a step fails on chain.
    """
    from consortia.identity.wallet import load_signing_identity
    from consortia.sdk import Client

    digest = hashlib.sha256(source.encode()).hexdigest()
    for org in admin_orgs:
        admin = load_signing_identity(crypto, org, f"admin@{org}")
        with Client(_url_of(url, org), admin, channel) as client:
            out = client.invoke("lifecycle", "approve", name, version, digest)
            _check(out, f"approval by {org}")
    first = load_signing_identity(crypto, admin_orgs[0], f"admin@{admin_orgs[0]}")
    with Client(_url_of(url, admin_orgs[0]), first, channel) as client:
        out = client.invoke("lifecycle", "commit", name, version, source)
        _check(out, "commit")
    return out


def _url_of(url: str | dict[str, str], org: str) -> str:
    return url if isinstance(url, str) else url[org]


def _check(out: dict[str, Any], what: str) -> None:
    receipt = out.get("receipt")
    if receipt is None:
        raise RuntimeError(f"{what} was not committed in time (still {out.get('status')})")
    if receipt["status"] != "ok":
        raise RuntimeError(f"{what} failed: {receipt['error']}")


@contract_app.command("deploy")
def deploy(
    name: str = typer.Option(..., "--name"),
    source: Path = typer.Option(..., "--source"),
    version: str = typer.Option("1", "--version"),
    admins: str = typer.Option(..., "--admins", help="Orgs whose admin keys you hold, comma separated."),
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    crypto: Path = CRYPTO_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Collect approvals from the listed orgs' admins and commit the contract, in one command."""
    if crypto is None:
        fail("--crypto is required")
    orgs = [o.strip() for o in admins.split(",") if o.strip()]
    if not orgs:
        fail("--admins needs at least one organisation")
    from consortia.identity.errors import IdentityError

    text = _read_source(source)
    with handled():
        try:
            out = deploy_contract(url, channel, crypto, orgs, name, version, text)
        except (RuntimeError, OSError, ValueError, IdentityError) as exc:
            fail(str(exc))
    if as_json:
        print_json(out)
    else:
        console.print(f"[green]deployed[/green] {name} v{version} at height {out['height']}")


def _as_admin(
    url: str, channel: str, crypto: Path | None, org: str, method: str, *args: str
) -> dict[str, Any]:
    """Submit one lifecycle call signed by ORG's admin; exits with a clear line on failure."""
    from consortia.identity.errors import IdentityError
    from consortia.identity.wallet import load_signing_identity
    from consortia.sdk import Client

    if crypto is None:
        fail("--crypto is required")
    try:
        admin = load_signing_identity(crypto, org, f"admin@{org}")
    except (OSError, ValueError, IdentityError) as exc:
        fail(f"cannot load the admin identity of {org}: {exc}")
    with handled(), Client(url, admin, channel) as client:
        try:
            out = client.invoke("lifecycle", method, *args)
            _check(out, f"{method} by {org}")
        except RuntimeError as exc:
            fail(str(exc))
    return out


NAME_OPT = typer.Option(..., "--name")
SOURCE_OPT = typer.Option(..., "--source")
VERSION_OPT = typer.Option("1", "--version")
ADMIN_ORG_OPT = typer.Option(..., "--org", help="The organisation whose admin signs.")


@contract_app.command("approve")
def approve(
    name: str = NAME_OPT,
    source: Path = SOURCE_OPT,
    version: str = VERSION_OPT,
    org: str = ADMIN_ORG_OPT,
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    crypto: Path = CRYPTO_OPT,
) -> None:
    """Approve a contract's exact source as ORG's admin (one step of the lifecycle)."""
    digest = hashlib.sha256(_read_source(source).encode()).hexdigest()
    _as_admin(url, channel, crypto, org, "approve", name, version, digest)
    console.print(f"[green]approved[/green] {name} v{version} ({digest[:16]}) for {org}")


@contract_app.command("commit")
def commit(
    name: str = NAME_OPT,
    source: Path = SOURCE_OPT,
    version: str = VERSION_OPT,
    org: str = ADMIN_ORG_OPT,
    url: str = URL_OPT,
    channel: str = CHANNEL_OPT,
    crypto: Path = CRYPTO_OPT,
) -> None:
    """Commit a contract once enough organisations approved it."""
    out = _as_admin(url, channel, crypto, org, "commit", name, version, _read_source(source))
    console.print(f"[green]committed[/green] {name} v{version} at height {out['height']}")


@contract_app.command("show")
def show(name: str, url: str = URL_OPT, channel: str = CHANNEL_OPT, as_json: bool = JSON_OPT) -> None:
    """Show a deployed contract's definition (version, hash, approving orgs)."""
    from consortia.sdk import Client

    with handled(), Client(url, None, channel) as client:
        out = client.query("lifecycle", "definition", name)
    if isinstance(out, dict):
        out = {k: v for k, v in out.items() if k != "source"}
    if as_json:
        print_json(out)
    else:
        console.print(out)
