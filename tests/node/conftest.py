"""Fixtures for node tests: a generated consortium and in-process nodes behind the real API."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from consortia.api.app import create_app
from consortia.cli.node_cmd import init_single_node
from consortia.identity.cryptogen import generate_consortium
from consortia.identity.wallet import SigningIdentity, load_signing_identity
from consortia.node.config import load_config
from consortia.node.main import build_node
from consortia.node.runtime import Node
from consortia.sdk import sign_transaction

ORGS = ["org1", "org2", "org3", "org4"]
T = TypeVar("T")


@pytest.fixture(scope="session")
def crypto_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("consortium") / "crypto"
    generate_consortium(out, ORGS)
    return out


def make_node_config(crypto: Path, where: Path, port: int = 7050) -> Path:
    return init_single_node(crypto, ORGS, where, "org1", port=port, wait_ms=5)


class Harness:
    """An in-process node with its API, driven through httpx without sockets."""

    def __init__(self, node: Node, http: httpx.AsyncClient, crypto: Path) -> None:
        self.node, self.http, self.crypto = node, http, crypto

    def who(self, org: str = "org1", name: str | None = None) -> SigningIdentity:
        return load_signing_identity(self.crypto, org, name or f"client0@{org}")

    def sign(self, identity: SigningIdentity, contract: str, method: str, *args: Any, **kw: Any) -> Any:
        cfg = self.node.config
        return sign_transaction(
            identity,
            kw.pop("chain_id", cfg.chain_id),
            kw.pop("channel", cfg.channel),
            contract,
            method,
            list(args),
            **kw,
        )

    async def submit(self, raw: bytes, wait: bool = True) -> httpx.Response:
        return await self.http.post(
            "/v1/channels/main/transactions",
            content=raw,
            params={"wait": str(wait).lower(), "timeout_ms": 10_000},
        )

    async def invoke(
        self, identity: SigningIdentity, contract: str, method: str, *args: Any
    ) -> dict[str, Any]:
        resp = await self.submit(self.sign(identity, contract, method, *args).raw)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        assert body["status"] == "committed", body
        return body

    async def query(self, contract: str, method: str, *args: Any) -> httpx.Response:
        return await self.http.post(
            "/v1/channels/main/query", json={"contract": contract, "method": method, "args": list(args)}
        )

    async def deploy(self, name: str, source: str, orgs: list[str] | None = None) -> dict[str, Any]:
        digest = hashlib.sha256(source.encode()).hexdigest()
        for org in orgs or ORGS[:3]:
            body = await self.invoke(self.who(org, f"admin@{org}"), "lifecycle", "approve", name, "1", digest)
            assert body["receipt"]["status"] == "ok", body
        return await self.invoke(self.who("org1", "admin@org1"), "lifecycle", "commit", name, "1", source)

    def state_root(self) -> bytes:
        return self.node.ledger.state_root


def run_node(
    crypto: Path,
    where: Path,
    body: Callable[[Harness], Awaitable[T]],
    clock_ms: Callable[[], int] | None = None,
    **app_kw: Any,
) -> T:
    """Start a node in this process, run `body` against its API, stop it cleanly."""
    config_path = make_node_config(crypto, where)

    async def main() -> T:
        node = build_node(load_config(config_path))
        if clock_ms is not None:
            node.clock_ms = clock_ms
        await node.start()
        app = create_app(node, **app_kw)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
                return await body(Harness(node, http, crypto))
        finally:
            await node.stop()

    return asyncio.run(main())


def now_ms() -> int:
    return int(time.time() * 1000)
