"""`consortia node`: create a node's configuration and genesis block, and run the node."""

from __future__ import annotations

import time
from pathlib import Path

import tomli_w
import typer

from consortia.cli.common import console, fail

node_app = typer.Typer(help="Create and run nodes.", no_args_is_help=True)


def init_single_node(
    crypto: Path,
    orgs: list[str],
    out: Path,
    org: str,
    channel: str = "main",
    chain_id: str = "consortia-dev",
    port: int = 7050,
    host: str = "127.0.0.1",
    suite: str = "ed25519",
    wait_ms: int = 50,
    eth_chain_id: int | None = None,
) -> Path:
    """Write `out/genesis.block` and `out/<node>/node.toml`; returns the node.toml path.

    The channel's Ethereum chain id is `eth_chain_id` (derived when None) and the orgs'
    client Ethereum accounts start on its EVM allowlist. Raises IdentityError (e.g.
    BadArgument for a chain id outside 1..2**53 - 1), GenesisError and OSError.
    """
    import msgspec

    from consortia.identity.genesis import channel_config_from_crypto
    from consortia.node.genesis import build_genesis, write_genesis
    from consortia.types import BlockLimits

    config = channel_config_from_crypto(
        crypto, orgs, chain_id, channel, suite=suite, engine="solo", eth_chain_id=eth_chain_id
    )
    config = msgspec.structs.replace(config, block=BlockLimits(wait_ms=wait_ms))
    out.mkdir(parents=True, exist_ok=True)
    genesis_path = out / "genesis.block"
    write_genesis(build_genesis(config, int(time.time() * 1000)), genesis_path)
    node_name = f"peer0.{org}"
    node_src = crypto / "orgs" / org / "nodes" / node_name
    node_dir = out / node_name
    node_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "node": {
            "name": node_name,
            "org": org,
            "data_dir": "data",
            "cert": str((node_src / "signcert.pem").resolve()),
            "key": str((node_src / "signkey.pem").resolve()),
            "genesis": str(genesis_path.resolve()),
        },
        "api": {"host": host, "port": port},
    }
    path = node_dir / "node.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


@node_app.command("init")
def init(
    crypto: Path = typer.Option(..., "--crypto", help="Crypto directory from `consortia crypto generate`."),
    orgs: str = typer.Option(..., "--orgs", help="Member organisations, comma separated."),
    out: Path = typer.Option(..., "--out", help="Directory for the genesis block and node config."),
    org: str = typer.Option(None, "--org", help="Organisation running this node (default: the first)."),
    channel: str = typer.Option("main", "--channel"),
    chain_id: str = typer.Option("consortia-dev", "--chain-id"),
    port: int = typer.Option(7050, "--port"),
    suite: str = typer.Option("ed25519", "--suite", help="Signature suite: ed25519, secp256k1, p256."),
    eth_chain_id: int | None = typer.Option(
        None,
        "--eth-chain-id",
        help="EIP-155 chain id wallets sign for, 1..2**53-1 (default: derived from the channel).",
    ),
) -> None:
    """Create a single-node (Solo) channel: genesis block plus node.toml."""
    from consortia.identity.errors import IdentityError
    from consortia.node.genesis import GenesisError
    from consortia.types.eth import BadEthChainId, check_eth_chain_id

    if eth_chain_id is not None:
        try:
            check_eth_chain_id(eth_chain_id)
        except BadEthChainId as exc:
            fail(f"--eth-chain-id: {exc}")
    names = [o.strip() for o in orgs.split(",") if o.strip()]
    if not names:
        fail("--orgs needs at least one organisation")
    owner = org or names[0]
    if owner not in names:
        fail(f"--org {owner} is not one of --orgs")
    try:
        path = init_single_node(
            crypto, names, out, owner, channel, chain_id, port, suite=suite, eth_chain_id=eth_chain_id
        )
    except (IdentityError, GenesisError, OSError, ValueError) as exc:
        fail(str(exc))
    console.print(f"[green]node config[/green] {path}\nstart it with: consortia node start --config {path}")


@node_app.command("start")
def start(config: Path = typer.Option(..., "--config", help="The node's TOML file.")) -> None:
    """Run a node in the foreground until SIGINT/SIGTERM (graceful shutdown)."""
    import logging

    from consortia.cli.serve import run
    from consortia.ledger import LedgerError
    from consortia.node.config import ConfigError
    from consortia.node.genesis import GenesisError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(config)
    except (ConfigError, GenesisError, LedgerError, ValueError, OSError) as exc:
        # A data directory of another channel or on-disk format is refused in one line.
        fail(f"{type(exc).__name__}: {exc}")
