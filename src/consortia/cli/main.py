"""The `consortia` command."""

from __future__ import annotations

import typer

from consortia.cli.bench_cmd import bench
from consortia.cli.contract_cmd import contract_app
from consortia.cli.crypto_cmd import crypto_app
from consortia.cli.demo import demo
from consortia.cli.network_cmd import network_app
from consortia.cli.node_cmd import node_app
from consortia.cli.sim_cmd import sim
from consortia.cli.tx_cmd import block_app, chain_app, state_app, tx_app

app = typer.Typer(
    help="consortia: a permissioned consortium blockchain platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(crypto_app, name="crypto")
app.add_typer(node_app, name="node")
app.add_typer(network_app, name="network")
app.add_typer(tx_app, name="tx")
app.add_typer(contract_app, name="contract")
app.add_typer(block_app, name="block")
app.add_typer(state_app, name="state")
app.add_typer(chain_app, name="chain")
app.command("demo")(demo)
app.command("bench")(bench)
app.command("sim")(sim)

if __name__ == "__main__":  # pragma: no cover
    app()
