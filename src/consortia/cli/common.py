"""Shared CLI plumbing: connection options, identity loading, output, error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

URL_OPT = typer.Option("http://127.0.0.1:7050", "--url", envvar="CONSORTIA_URL", help="Node API URL.")
CHANNEL_OPT = typer.Option("main", "--channel", envvar="CONSORTIA_CHANNEL", help="Channel name.")
CRYPTO_OPT = typer.Option(
    None,
    "--crypto",
    envvar="CONSORTIA_CRYPTO",
    help="Consortium crypto directory (from `consortia crypto generate`).",
)
ORG_OPT = typer.Option(None, "--org", envvar="CONSORTIA_ORG", help="Your organisation.")
USER_OPT = typer.Option(
    None,
    "--user",
    envvar="CONSORTIA_USER",
    help="Identity name, e.g. client0@org1 or admin@org1 (default: client0@ORG).",
)
JSON_OPT = typer.Option(False, "--json", help="Machine-readable JSON output.")


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextmanager
def handled() -> Iterator[None]:
    """Turn the SDK's and node's typed errors into one clear line and exit code 2."""
    import httpx

    from consortia.sdk import ApiError, VerificationError

    try:
        yield
    except ApiError as exc:
        fail(f"the node refused the request ({exc.status} {exc.code}): {exc.message}")
    except VerificationError as exc:
        fail(f"verification failed: {exc}", 3)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the node: {exc}")


def load_identity(crypto: Path | None, org: str | None, user: str | None) -> Any:
    from consortia.identity.errors import IdentityError
    from consortia.identity.wallet import load_signing_identity

    if crypto is None or org is None:
        fail("a signing identity is needed: pass --crypto DIR and --org ORG (or set CONSORTIA_CRYPTO/ORG)")
    name = user or f"client0@{org}"
    try:
        return load_signing_identity(crypto, org, name)
    except (OSError, ValueError, IdentityError) as exc:
        fail(f"cannot load identity {name} of {org} from {crypto}: {exc}")


def parse_args(values: list[str]) -> list[Any]:
    """CLI arguments: JSON literals when they parse (numbers, lists, objects), else strings."""
    from consortia.api.jsonview import from_plain
    from consortia.types import CodecError, check_value

    out: list[Any] = []
    for v in values:
        try:
            parsed = json.loads(v)
        except json.JSONDecodeError:
            parsed = v
        parsed = from_plain(parsed)
        try:
            check_value(parsed)
        except CodecError as exc:
            fail(f"argument {v!r}: {exc}")
        out.append(parsed)
    return out
