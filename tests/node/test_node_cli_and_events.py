"""The CLI and the WebSocket subscriptions against a real node process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.cli.procs import free_port, start_node_process, stop_node_process, wait_healthy
from consortia.identity.wallet import load_signing_identity
from consortia.sdk import AsyncClient, Client
from tests.node.conftest import make_node_config

COUNTER = """
from consortia.contract import Contract, view


class Counter(Contract):
    def bump(self, by):
        n = (self.ctx.get("n") or 0) + by
        self.ctx.put("n", n)
        self.ctx.emit("Bumped", {"n": n})
        return n

    @view
    def get(self):
        return self.ctx.get("n") or 0
"""


@pytest.fixture(scope="module")
def node_url(crypto_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    where = tmp_path_factory.mktemp("clinode")
    port = free_port()
    proc = start_node_process(make_node_config(crypto_dir, where, port=port), where / "node.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        assert stop_node_process(proc) == 0


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


def test_cli_step_by_step_lifecycle_invoke_query_state(
    node_url: str, crypto_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "counter.py"
    source.write_text(COUNTER)
    base = ["--url", node_url, "--crypto", str(crypto_dir)]
    r = cli("contract", "approve", "--name", "counter", "--source", str(source), "--org", "org1", *base)
    assert r.exit_code == 0, r.output
    r = cli("contract", "commit", "--name", "counter", "--source", str(source), "--org", "org1", *base)
    assert r.exit_code == 2 and "failed" in r.output  # 1 of 4 approvals: not a majority
    for org in ("org2", "org3"):
        r = cli("contract", "approve", "--name", "counter", "--source", str(source), "--org", org, *base)
        assert r.exit_code == 0, r.output
    r = cli("contract", "commit", "--name", "counter", "--source", str(source), "--org", "org1", *base)
    assert r.exit_code == 0, r.output
    r = cli("tx", "invoke", "counter", "bump", "5", "--org", "org2", "--json", *base)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["receipt"]["result"] == 5 and out["status"] == "committed"
    r = cli("tx", "query", "counter", "get", "--url", node_url, "--json")
    assert json.loads(r.output)["result"] == 5
    r = cli("state", "get", "counter", "n", "--url", node_url, "--json")
    got = json.loads(r.output)
    assert got["value"] == 5 and got["verified"] is True and got["signed_by"] == ["org1"]
    r = cli("state", "history", "counter", "n", "--url", node_url, "--json")
    assert [v["value"] for v in json.loads(r.output)["versions"]] == [5]
    r = cli("tx", "status", out["tx_id"], "--url", node_url, "--json")
    assert json.loads(r.output)["receipt"]["status"] == "ok"
    r = cli("block", "get", str(out["height"]), "--url", node_url, "--json")
    assert json.loads(r.output)["transactions"][0]["method"] == "bump"
    r = cli("chain", "info", "--url", node_url, "--json")
    assert json.loads(r.output)["height"] >= out["height"]
    r = cli("contract", "show", "counter", "--url", node_url, "--json")
    assert json.loads(r.output)["version"] == "1"


def test_cli_errors_are_one_clear_line(node_url: str, crypto_dir: Path) -> None:
    r = cli(
        "tx",
        "invoke",
        "token",
        "transfer",
        "x",
        "1.5",
        "--url",
        node_url,
        "--crypto",
        str(crypto_dir),
        "--org",
        "org1",
    )
    assert r.exit_code == 2 and "float" in r.output
    r = cli("tx", "invoke", "token", "transfer", "x", "1", "--url", node_url)
    assert r.exit_code == 2 and "--crypto" in r.output
    r = cli("tx", "status", "zz", "--url", node_url)
    assert r.exit_code == 2 and "bad_hash" in r.output
    r = cli("chain", "info", "--url", "http://127.0.0.1:1")
    assert r.exit_code == 2 and "cannot reach" in r.output


def test_websocket_subscriptions_deliver_blocks_and_events(node_url: str, crypto_dir: Path) -> None:
    admin = load_signing_identity(crypto_dir, "org1", "admin@org1")

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with AsyncClient(node_url, admin, "main") as client:
            events = client.events(contract="token", name="Issued")
            blocks = client.blocks()
            first_event = asyncio.ensure_future(events.__anext__())
            first_block = asyncio.ensure_future(blocks.__anext__())
            await asyncio.sleep(0.3)  # let both subscriptions connect
            out = await client.invoke("token", "issue", "org1/ws", 7)
            assert out["receipt"]["status"] == "ok"
            ev = await asyncio.wait_for(first_event, 10)
            blk = await asyncio.wait_for(first_block, 10)
            await events.aclose()
            await blocks.aclose()
            return ev, blk

    ev, blk = asyncio.run(main())
    assert ev["name"] == "Issued" and ev["contract"] == "token" and ev["payload"]["amount"] == 7
    assert blk["type"] == "block" and blk["header"]["height"] >= 1
    with Client(node_url) as reader:
        assert reader.query("token", "balance", "org1/ws") == 7
