"""`consortia crypto ...`: generate, inspect and revoke a consortium's crypto material."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from consortia.identity import (
    IdentityError,
    generate_consortium,
    list_certificates,
    revoke,
)
from consortia.identity.check import STATUS_EXPIRED, STATUS_EXPIRING, CertStatus

crypto_app = typer.Typer(
    name="crypto",
    help="Generate, check and revoke organisation certificates (like Fabric's cryptogen).",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_EXPIRED = 1
EXIT_ERROR = 2

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _fail(message: str) -> NoReturn:
    _err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


def _split_orgs(orgs: str) -> list[str]:
    return [name.strip() for name in orgs.split(",") if name.strip()]


@crypto_app.command()
def generate(
    orgs: Annotated[str, typer.Option(help="Comma-separated organisation names, e.g. org1,org2.")],
    out: Annotated[Path, typer.Option(help="Directory to write the consortium into.")],
    suite: Annotated[str, typer.Option(help="Signature suite: ed25519, secp256k1 or p256.")] = "ed25519",
    days: Annotated[int, typer.Option(help="Validity of node, admin and client certificates.")] = 365,
    ca_days: Annotated[int, typer.Option(help="Validity of the CA certificates.")] = 3650,
    clients: Annotated[int, typer.Option(help="Client identities per organisation.")] = 1,
    nodes: Annotated[int, typer.Option(help="Nodes per organisation.")] = 1,
    force: Annotated[bool, typer.Option(help="Replace existing material under OUT/orgs.")] = False,
) -> None:
    """Generate CAs, node, admin and client identities, TLS certificates, CRLs, and an
    Ethereum key for each client."""
    try:
        result = generate_consortium(
            out,
            _split_orgs(orgs),
            suite=suite,
            days=days,
            ca_days=ca_days,
            clients=clients,
            nodes=nodes,
            force=force,
        )
    except (IdentityError, OSError) as exc:
        _fail(str(exc))
    table = Table(title=escape(f"Consortium in {result.root} (suite {result.suite})"))
    table.add_column("org")
    table.add_column("nodes")
    table.add_column("users")
    for org in result.orgs:
        table.add_row(org.name, ", ".join(org.nodes), ", ".join(org.users))
    _out.print(table)
    _out.print(f"[green]Generated {len(result.orgs)} organisations.[/green] Keys are mode 0600.")
    _out.print(
        "Each client has an Ethereum key (users/<client>/eth.key, eth.address); a genesis built"
        " from this directory puts those accounts on the channel's EVM allowlist.",
        soft_wrap=True,
    )


def _as_json(statuses: list[CertStatus]) -> str:
    return json.dumps(
        [
            {
                "path": str(s.path),
                "subject": s.subject,
                "org": s.org,
                "role": s.role,
                "not_after": s.not_after.isoformat(),
                "days_left": s.days_left,
                "status": s.status,
            }
            for s in statuses
        ],
        indent=2,
    )


@crypto_app.command()
def check(
    directory: Annotated[Path, typer.Argument(help="The consortium directory.", metavar="DIR")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    warn_days: Annotated[int, typer.Option(help="Warn about certificates expiring this soon.")] = 30,
) -> None:
    """List every certificate with its expiry; exit 1 if any has expired."""
    try:
        statuses = list_certificates(directory, warn_days=warn_days)
    except (IdentityError, OSError) as exc:
        _fail(str(exc))
    expired = any(s.status == STATUS_EXPIRED for s in statuses)
    if as_json:
        typer.echo(_as_json(statuses))
        raise typer.Exit(EXIT_EXPIRED if expired else 0)
    table = Table(title=escape(f"Certificates in {directory}"))
    for column in ("org", "role", "subject", "not after (UTC)", "days left", "status"):
        table.add_column(column)
    colours = {STATUS_EXPIRED: "red", STATUS_EXPIRING: "yellow"}
    for s in statuses:
        colour = colours.get(s.status, "green")
        table.add_row(
            s.org,
            s.role,
            escape(s.subject),
            s.not_after.strftime("%Y-%m-%d %H:%M"),
            str(s.days_left),
            f"[{colour}]{s.status}[/{colour}]",
        )
    _out.print(table)
    for s in statuses:
        if s.status == STATUS_EXPIRING:
            _out.print(
                f"[yellow]warning: {escape(str(s.path))} expires in {s.days_left} days"
                f" ({s.not_after:%Y-%m-%d})[/yellow]",
                soft_wrap=True,
            )
        elif s.status == STATUS_EXPIRED:
            _out.print(
                f"[red]expired: {escape(str(s.path))} expired on {s.not_after:%Y-%m-%d}[/red]", soft_wrap=True
            )
    raise typer.Exit(EXIT_EXPIRED if expired else 0)


@crypto_app.command("revoke")
def revoke_cmd(
    directory: Annotated[Path, typer.Option("--dir", help="The consortium directory.")],
    org: Annotated[str, typer.Option(help="The organisation whose CA issued the certificate.")],
    cert: Annotated[Path, typer.Option(help="The certificate to revoke (PEM or DER).")],
) -> None:
    """Add a certificate to its organisation's CRL (takes effect via a config update)."""
    try:
        path = revoke(directory, org, cert)
    except (IdentityError, OSError) as exc:
        _fail(str(exc))
    _out.print(
        f"[green]Revoked[/green] {escape(str(cert))}; CRL written to {escape(str(path))}", soft_wrap=True
    )
