"""`consortia node start` refuses a data directory it cannot use in one clear line."""

from __future__ import annotations

from pathlib import Path

import lmdb
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.cli.node_cmd import init_single_node
from consortia.cli.procs import free_port
from consortia.node.genesis import read_genesis
from consortia.node.runtime import open_ledger_with_genesis


def test_a_ledger_of_another_on_disk_format_is_refused_with_a_message(
    crypto_dir: Path, tmp_path: Path
) -> None:
    toml = init_single_node(crypto_dir, ["org1", "org2", "org3"], tmp_path, "org1", port=free_port())
    data_dir = toml.parent / "data"
    open_ledger_with_genesis(data_dir, read_genesis(tmp_path / "genesis.block")).close()
    env = lmdb.open(str(data_dir / "main" / "index"), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.put(b"format", b"1", db=env.open_db(b"meta", txn=txn))  # as an older release wrote it
    env.close()

    result = CliRunner().invoke(app, ["node", "start", "--config", str(toml)])
    assert result.exit_code != 0
    assert "IncompatibleFormat" in result.output and "format 1" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
