"""Helpers for EVM tests against an in-process node (see tests/node/conftest.py's run_node)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.node.conftest import Harness

OCTET = {"content-type": "application/octet-stream"}


async def submit(h: Harness, raw: bytes, wait: bool = True) -> httpx.Response:
    """Post a raw transaction to the native submit endpoint."""
    return await h.http.post(
        "/v1/channels/main/transactions",
        content=raw,
        headers=OCTET,
        params={"wait": str(wait).lower(), "timeout_ms": 10_000},
    )


async def permit(h: Harness, address: bytes, org: str) -> None:
    """Put `address` on the EVM allowlist: org1 proposes, org2 and org3 approve (a majority)."""
    update = {"op": "evm_permit", "address": "0x" + address.hex(), "org": org}
    body = await h.invoke(h.who("org1", "admin@org1"), "config", "propose", update)
    assert body["receipt"]["status"] == "ok", body
    pid = body["receipt"]["result"]
    for approver in ("org2", "org3"):
        body = await h.invoke(h.who(approver, f"admin@{approver}"), "config", "approve", pid)
        assert body["receipt"]["status"] == "ok", body


def unbytes(value: Any) -> bytes:
    """Bytes from the native API's {"$bytes": base64} form."""
    return base64.b64decode(value["$bytes"])
