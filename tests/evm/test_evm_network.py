"""A network made by `consortia network up` is usable from Ethereum tools at once.

Its genesis carries the chosen Ethereum chain id and puts every organisation's client
account on the EVM allowlist; the keys are where `network status --json` says; a raw
transaction signed with one is committed, and a key of no organisation is refused.
"""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from consortia.api.app import create_app
from consortia.cli.main import app
from consortia.cli.network_cmd import create_network, save_state, stop_network
from consortia.identity.ethkeys import load_eth_key, read_eth_address
from consortia.node.config import load_config
from consortia.node.genesis import read_genesis
from consortia.node.main import build_node
from consortia.types import ChannelConfig, decode
from consortia.types.eth import checksum_address, eth_address, eth_chain_id, sign_eth_transaction

from .evm_kit import ALICE, ALICE_KEY, BOB, call_data, token_deploy_data

ORGS = ["org1", "org2", "org3"]
CHAIN_ID = 31337


def client_dir(base: Path, org: str) -> Path:
    return base / "crypto" / "orgs" / org / "users" / f"client0@{org}"


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


async def rpc(http: httpx.AsyncClient, method: str, *params: Any) -> dict[str, Any]:
    resp = await http.post(
        "/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def mined(http: httpx.AsyncClient, tx_hash: str) -> dict[str, Any]:
    for _ in range(1000):
        found = (await rpc(http, "eth_getTransactionReceipt", tx_hash))["result"]
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no receipt for {tx_hash}")


def test_network_genesis_permits_each_org_client_and_carries_the_chain_id(tmp_path: Path) -> None:
    base = tmp_path / "net"
    (entry,) = create_network(base, ORGS, "solo", eth_chain_id=CHAIN_ID, wait_ms=5)
    config = decode(read_genesis(base / "genesis.block").txs[0], ChannelConfig)
    assert config.eth_chain_id == CHAIN_ID
    keys = {org: load_eth_key(client_dir(base, org)) for org in ORGS}
    for org in ORGS:
        assert stat.S_IMODE((client_dir(base, org) / "eth.key").stat().st_mode) == 0o600
    expected = sorted((eth_address(key), org) for org, key in keys.items())
    assert [(p.address, p.org) for p in config.genesis_evm_allowlist] == expected

    async def main() -> None:
        node = build_node(load_config(Path(entry.config)))
        await node.start()
        try:
            transport = httpx.ASGITransport(app=create_app(node))
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
                await exercise(http)
        finally:
            await node.stop()

    async def exercise(http: httpx.AsyncClient) -> None:
        assert (await rpc(http, "eth_chainId"))["result"] == hex(CHAIN_ID)

        def signed(key: bytes, nonce: int, to: bytes | None, data: bytes, chain_id: int = CHAIN_ID) -> str:
            raw = sign_eth_transaction(key, chain_id=chain_id, nonce=nonce, gas=1_000_000, to=to, data=data)
            return "0x" + raw.hex()

        # Every organisation's generated key sends at once: no permit proposal needed.
        deploy = signed(keys["org2"], 0, None, token_deploy_data("Coin", "C", 1_000))
        receipt = await mined(http, (await rpc(http, "eth_sendRawTransaction", deploy))["result"])
        assert receipt["status"] == "0x1", receipt
        token = bytes.fromhex(receipt["contractAddress"][2:])
        org2 = eth_address(keys["org2"])
        move = signed(keys["org2"], 1, token, call_data("transfer(address,uint256)", BOB, 7))
        assert (await mined(http, (await rpc(http, "eth_sendRawTransaction", move))["result"]))[
            "status"
        ] == "0x1"
        for org in ("org1", "org3"):
            hello = signed(keys[org], 0, token, call_data("balanceOf(address)", org2))
            assert (await mined(http, (await rpc(http, "eth_sendRawTransaction", hello))["result"]))[
                "status"
            ] == "0x1"

        # A key of no organisation is refused with not_permitted, and nothing changes.
        height = (await rpc(http, "eth_blockNumber"))["result"]
        stranger = await rpc(http, "eth_sendRawTransaction", signed(ALICE_KEY, 0, None, b""))
        assert stranger["error"]["data"]["code"] == "not_permitted", stranger
        assert ALICE.hex() in stranger["error"]["message"]
        native = await http.post(
            "/v1/channels/main/transactions",
            content=bytes.fromhex(signed(ALICE_KEY, 0, None, b"")[2:]),
            headers={"content-type": "application/octet-stream"},
        )
        assert native.status_code == 403 and native.json()["error"]["code"] == "not_permitted"
        # A permitted key signing for the derived chain id instead of the chosen one is refused.
        derived = eth_chain_id(config.chain_id, config.channel)
        wrong = await rpc(
            http, "eth_sendRawTransaction", signed(keys["org1"], 1, None, b"", chain_id=derived)
        )
        assert wrong["error"]["data"]["code"] == "wrong_chain", wrong
        assert (await rpc(http, "eth_blockNumber"))["result"] == height

    asyncio.run(main())


def test_network_status_json_lists_jsonrpc_urls_chain_id_and_key_files(tmp_path: Path) -> None:
    base = tmp_path / "net"
    entries = create_network(base, ["org1", "org2"], "raft")
    save_state(base, "raft", entries)  # not started: status still describes every node
    result = cli("network", "status", "--dir", str(base), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["eth_chain_id"] == eth_chain_id("consortia-net", "main")
    for entry, node in zip(entries, report["nodes"], strict=True):
        port = entry.api.rsplit(":", 1)[1]
        assert node["jsonrpc"] == f"http://127.0.0.1:{port}/jsonrpc"
        assert node["jsonrpc_ws"] == f"ws://127.0.0.1:{port}/jsonrpc"
        assert node["healthy"] is False
    accounts = report["eth_accounts"]
    assert [(a["org"], a["identity"]) for a in accounts] == [
        ("org1", "client0@org1"),
        ("org2", "client0@org2"),
    ]
    for account in accounts:
        key = Path(account["key"])
        assert key.is_absolute() and stat.S_IMODE(key.stat().st_mode) == 0o600
        assert checksum_address(eth_address(load_eth_key(key.parent))) == account["address"]
        assert read_eth_address(Path(account["address_file"]).parent) == eth_address(load_eth_key(key.parent))
    human = cli("network", "status", "--dir", str(base))
    assert human.exit_code == 0, human.output
    assert "/jsonrpc" in human.output and accounts[0]["address"] in human.output


@pytest.mark.parametrize("bad", ["0", "-1", str(2**53), str(2**64)])
def test_bad_eth_chain_id_is_refused_before_anything_is_written(tmp_path: Path, bad: str) -> None:
    base = tmp_path / "net"
    result = cli(
        "network", "up", "--orgs", "1", "--consensus", "solo", "--dir", str(base), "--eth-chain-id", bad
    )
    assert result.exit_code == 2
    assert "--eth-chain-id" in result.output and "9007199254740991" in result.output
    assert not base.exists()
    crypto = tmp_path / "crypto"
    assert cli("crypto", "generate", "--orgs", "org1", "--out", str(crypto)).exit_code == 0
    out = tmp_path / "single"
    result = cli(
        "node", "init", "--crypto", str(crypto), "--orgs", "org1", "--out", str(out), "--eth-chain-id", bad
    )
    assert result.exit_code == 2 and "9007199254740991" in result.output
    assert not out.exists()
    assert cli("network", "up", "--dir", str(base), "--eth-chain-id", "seven").exit_code == 2


def test_network_up_serves_ethereum_json_rpc_over_http_at_once(tmp_path: Path) -> None:
    base = tmp_path / "net"
    result = cli(
        "network",
        "up",
        "--orgs",
        "2",
        "--consensus",
        "solo",
        "--dir",
        str(base),
        "--eth-chain-id",
        "1337",
        "--json",
    )
    try:
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["eth_chain_id"] == 1337
        (node,) = report["nodes"]
        account = next(a for a in report["eth_accounts"] if a["org"] == "org2")
        key = load_eth_key(Path(account["key"]).parent)
        raw = sign_eth_transaction(key, chain_id=1337, nonce=0, gas=100_000, to=BOB, value=0)
        with httpx.Client(timeout=10.0) as http:

            def call(method: str, *params: Any) -> Any:
                body = http.post(
                    node["jsonrpc"],
                    json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                ).json()
                assert "error" not in body, body
                return body["result"]

            assert call("eth_chainId") == hex(1337)
            tx_hash = call("eth_sendRawTransaction", "0x" + raw.hex())
            deadline = time.monotonic() + 30
            receipt = None
            while receipt is None and time.monotonic() < deadline:
                receipt = call("eth_getTransactionReceipt", tx_hash)
                time.sleep(0.05)
            assert receipt is not None and receipt["status"] == "0x1", receipt
            assert call("eth_getTransactionCount", account["address"], "latest") == "0x1"
    finally:
        if (base / "network.json").exists():
            stop_network(base)
