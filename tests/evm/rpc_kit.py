"""Helpers for JSON-RPC tests: calls over the in-process API, a signing wallet, a served node."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from consortia.api.app import create_app
from consortia.cli.procs import free_port
from consortia.node.config import load_config
from consortia.node.main import build_node
from consortia.types.eth import TX_TYPE_FEE_MARKET, eth_address, sign_eth_transaction
from tests.node.conftest import Harness, make_node_config

T = TypeVar("T")


async def rpc(h: Harness, method: str, *params: Any) -> dict[str, Any]:
    """The whole answer document of one call."""
    resp = await h.http.post(
        "/jsonrpc", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["id"] == 7 and body["jsonrpc"] == "2.0"
    return body


async def result(h: Harness, method: str, *params: Any) -> Any:
    body = await rpc(h, method, *params)
    assert "error" not in body, body
    return body["result"]


async def error(h: Harness, method: str, *params: Any) -> dict[str, Any]:
    body = await rpc(h, method, *params)
    assert "result" not in body, body
    found: dict[str, Any] = body["error"]
    return found


async def receipt(h: Harness, tx_hash: str) -> dict[str, Any]:
    for _ in range(1000):
        found = await result(h, "eth_getTransactionReceipt", tx_hash)
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no receipt for {tx_hash}")


class Wallet:
    """Signs Ethereum transactions for one key, counting its nonces."""

    def __init__(self, h: Harness, key: bytes, chain_id: int) -> None:
        self.h, self.key, self.chain_id = h, key, chain_id
        self.address = eth_address(key)
        self.nonce = 0

    @classmethod
    async def of(cls, h: Harness, key: bytes) -> Wallet:
        """A wallet for the node's chain, as a wallet learns it: from eth_chainId."""
        return cls(h, key, int(await result(h, "eth_chainId"), 16))

    def raw(self, to: bytes | None, data: bytes = b"", **kw: Any) -> str:
        nonce = kw.pop("nonce", self.nonce)
        self.nonce = nonce + 1
        signed = sign_eth_transaction(
            self.key,
            chain_id=self.chain_id,
            nonce=nonce,
            gas=kw.pop("gas", 1_000_000),  # within every channel's per-transaction gas cap
            to=to,
            data=data,
            tx_type=kw.pop("tx_type", TX_TYPE_FEE_MARKET),
            **kw,
        )
        return "0x" + signed.hex()

    async def send(self, to: bytes | None, data: bytes = b"", **kw: Any) -> str:
        tx_hash: str = await result(self.h, "eth_sendRawTransaction", self.raw(to, data, **kw))
        return tx_hash

    async def send_and_wait(self, to: bytes | None, data: bytes = b"", **kw: Any) -> dict[str, Any]:
        return await receipt(self.h, await self.send(to, data, **kw))


def serve_node(crypto: Path, where: Path, body: Callable[[Harness, str], Awaitable[T]], **app_kw: Any) -> T:
    """Like run_node, but the API also listens on a local port; `body` gets its ws:// URL."""
    config_path = make_node_config(crypto, where)

    async def main() -> T:
        node = build_node(load_config(config_path))
        await node.start()
        app = create_app(node, **app_kw)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                assert not serving.done(), "the API server did not start"
                await asyncio.sleep(0.01)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
                return await body(Harness(node, http, crypto), f"ws://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await serving
            await node.stop()

    return asyncio.run(main())
