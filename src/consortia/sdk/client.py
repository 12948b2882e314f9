"""Python SDK: sign with a certificate's key, submit, wait for commit, query, verify, subscribe.

`Client` is synchronous, `AsyncClient` is for asyncio code; both speak the node's REST and
WebSocket API and verify Merkle proofs and commit certificates locally.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from consortia.api.jsonview import from_plain, plain
from consortia.identity.wallet import SigningIdentity
from consortia.ledger.proofs import StateProof, TxProof, verify_state_proof, verify_tx_proof
from consortia.sdk.verify import VerificationError, verify_certificate
from consortia.types import (
    Block,
    ChannelConfig,
    CommitCertificate,
    Envelope,
    Header,
    Transaction,
    decode,
    encode,
    tx_signing_bytes,
)


class ApiError(Exception):
    """The node refused a request; `code` is the node's machine-readable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class SignedTx:
    tx_id: bytes
    raw: bytes
    tx: Transaction


@dataclass(frozen=True)
class VerifiedValue:
    """A state value proven against a certified block header."""

    value: Any
    exists: bool
    height: int
    state_root: bytes
    signing_orgs: list[str]


def sign_transaction(
    identity: SigningIdentity,
    chain_id: str,
    channel: str,
    contract: str,
    method: str,
    args: list[Any],
    expiry_height: int = 0,
    nonce: bytes | None = None,
) -> SignedTx:
    tx = Transaction(
        chain_id=chain_id,
        channel=channel,
        nonce=nonce if nonce is not None else os.urandom(16),
        signer=identity.cert_der,
        contract=contract,
        method=method,
        args=list(args),
        expiry_height=expiry_height,
    )
    payload = encode(tx)
    env = Envelope(payload, b"")
    signature = identity.sign(tx_signing_bytes(env.tx_id))
    raw = encode(Envelope(payload, signature))
    return SignedTx(env.tx_id, raw, tx)


def _raise_for(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except json.JSONDecodeError:
        body = {}
    if resp.status_code >= 400:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise ApiError(resp.status_code, err.get("code", "http_error"), err.get("message", resp.text))
    return body  # type: ignore[no-any-return]


class _Base:
    def __init__(
        self, url: str, identity: SigningIdentity | None, channel: str, chain_id: str | None
    ) -> None:
        self.url = url.rstrip("/")
        self.identity = identity
        self.channel = channel
        self.chain_id = chain_id
        self._config: ChannelConfig | None = None

    def _p(self, path: str) -> str:
        return f"/v1/channels/{self.channel}{path}"

    def _need_identity(self) -> SigningIdentity:
        if self.identity is None:
            raise ValueError("this client has no signing identity")
        return self.identity

    def _verify_value(self, body: dict[str, Any], config: ChannelConfig) -> VerifiedValue:
        header = decode(base64.b64decode(body["header"]), Header)
        cert = (
            None
            if body["certificate"] is None
            else decode(base64.b64decode(body["certificate"]), CommitCertificate)
        )
        orgs = verify_certificate(config, header, cert)
        proof = decode(base64.b64decode(body["proof"]), StateProof)
        skey = base64.b64decode(body["state_key"])
        raw = base64.b64decode(body["value"]) if body["exists"] else None
        if not verify_state_proof(header.state_root, skey, raw, proof):
            raise VerificationError("state proof does not match the certified state root")
        return VerifiedValue(body.get("decoded"), body["exists"], header.height, header.state_root, orgs)


class Client(_Base):
    """Synchronous client for one channel of one node."""

    def __init__(
        self,
        url: str,
        identity: SigningIdentity | None = None,
        channel: str = "main",
        chain_id: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(url, identity, channel, chain_id)
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> dict[str, Any]:
        return _raise_for(self.http.get(self._p("/info")))

    def config(self) -> ChannelConfig:
        """The channel's genesis configuration (the root of trust for verification)."""
        if self._config is None:
            resp = self.http.get(self._p("/blocks/0"), params={"raw": "true"})
            if resp.status_code != 200:
                _raise_for(resp)
            genesis = decode(resp.content, Block)
            self._config = decode(genesis.txs[0], ChannelConfig)
        return self._config

    def _chain(self) -> str:
        if self.chain_id is None:
            self.chain_id = self.info()["chain_id"]
        return self.chain_id

    def sign(self, contract: str, method: str, *args: Any, expiry_height: int = 0) -> SignedTx:
        return sign_transaction(
            self._need_identity(), self._chain(), self.channel, contract, method, list(args), expiry_height
        )

    def submit_signed(self, signed: SignedTx, wait: bool = True, timeout_ms: int = 30_000) -> dict[str, Any]:
        resp = self.http.post(
            self._p("/transactions"),
            content=signed.raw,
            params={"wait": str(wait).lower(), "timeout_ms": timeout_ms},
            headers={"content-type": "application/octet-stream"},
        )
        return _raise_for(resp)

    def submit_many(self, signed: list[SignedTx]) -> list[dict[str, Any]]:
        """High-volume path: one request for many pre-signed transactions."""
        resp = self.http.post(
            self._p("/transactions/batch"),
            content=encode([s.raw for s in signed]),
            headers={"content-type": "application/octet-stream"},
        )
        return _raise_for(resp)["results"]  # type: ignore[no-any-return]

    def invoke(self, contract: str, method: str, *args: Any, wait: bool = True) -> dict[str, Any]:
        """Sign and submit; with `wait`, return once committed (raises ApiError if refused)."""
        return self.submit_signed(self.sign(contract, method, *args), wait=wait)

    def status(self, tx_id: bytes | str, wait: bool = False) -> dict[str, Any]:
        tid = tx_id.hex() if isinstance(tx_id, bytes) else tx_id
        return _raise_for(self.http.get(self._p(f"/transactions/{tid}"), params={"wait": str(wait).lower()}))

    def query(self, contract: str, method: str, *args: Any) -> Any:
        resp = self.http.post(
            self._p("/query"), json={"contract": contract, "method": method, "args": plain(list(args))}
        )
        return from_plain(_raise_for(resp)["result"])

    def block(self, height: int) -> dict[str, Any]:
        return _raise_for(self.http.get(self._p(f"/blocks/{height}")))

    def history(self, contract: str, key: str, limit: int = 100) -> list[dict[str, Any]]:
        body = _raise_for(
            self.http.get(self._p(f"/history/{contract}/{quote(key, safe='')}"), params={"limit": limit})
        )
        return body["versions"]  # type: ignore[no-any-return]

    def get_verified(self, contract: str, key: str) -> VerifiedValue:
        """Read a contract's value and verify it locally: proof -> state root -> certified header."""
        body = _raise_for(
            self.http.get(self._p(f"/state/{contract}/{quote(key, safe='')}"), params={"proof": "true"})
        )
        return self._verify_value(body, self.config())

    def verify_tx(self, tx_id: bytes | str) -> tuple[int, int, list[str]]:
        """Prove a committed transaction is in a certified block: (height, index, signing orgs)."""
        tid = tx_id.hex() if isinstance(tx_id, bytes) else tx_id
        body = _raise_for(self.http.get(self._p(f"/transactions/{tid}/proof")))
        proof = decode(base64.b64decode(body["proof"]), TxProof)
        block = decode(base64.b64decode(body["block"]), Block)
        orgs = verify_certificate(self.config(), block.header, block.certificate)
        raw = block.txs[proof.index]
        if decode(raw, Envelope).tx_id.hex() != tid:
            raise VerificationError("proof is for a different transaction")
        if not verify_tx_proof(block.header.tx_root, raw, proof):
            raise VerificationError("transaction inclusion proof does not match the tx root")
        return proof.height, proof.index, orgs


class AsyncClient(_Base):
    """asyncio client with the same operations, plus event subscriptions."""

    def __init__(
        self,
        url: str,
        identity: SigningIdentity | None = None,
        channel: str = "main",
        chain_id: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(url, identity, channel, chain_id)
        self.http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def info(self) -> dict[str, Any]:
        return _raise_for(await self.http.get(self._p("/info")))

    async def config(self) -> ChannelConfig:
        if self._config is None:
            resp = await self.http.get(self._p("/blocks/0"), params={"raw": "true"})
            if resp.status_code != 200:
                _raise_for(resp)
            self._config = decode(decode(resp.content, Block).txs[0], ChannelConfig)
        return self._config

    async def sign(self, contract: str, method: str, *args: Any, expiry_height: int = 0) -> SignedTx:
        if self.chain_id is None:
            self.chain_id = (await self.info())["chain_id"]
        return sign_transaction(
            self._need_identity(), self.chain_id, self.channel, contract, method, list(args), expiry_height
        )

    async def submit_signed(
        self, signed: SignedTx, wait: bool = True, timeout_ms: int = 30_000
    ) -> dict[str, Any]:
        resp = await self.http.post(
            self._p("/transactions"),
            content=signed.raw,
            params={"wait": str(wait).lower(), "timeout_ms": timeout_ms},
            headers={"content-type": "application/octet-stream"},
        )
        return _raise_for(resp)

    async def invoke(self, contract: str, method: str, *args: Any, wait: bool = True) -> dict[str, Any]:
        return await self.submit_signed(await self.sign(contract, method, *args), wait=wait)

    async def query(self, contract: str, method: str, *args: Any) -> Any:
        resp = await self.http.post(
            self._p("/query"), json={"contract": contract, "method": method, "args": plain(list(args))}
        )
        return from_plain(_raise_for(resp)["result"])

    async def get_verified(self, contract: str, key: str) -> VerifiedValue:
        resp = await self.http.get(
            self._p(f"/state/{contract}/{quote(key, safe='')}"), params={"proof": "true"}
        )
        return self._verify_value(_raise_for(resp), await self.config())

    async def events(
        self, contract: str | None = None, name: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield contract events as blocks commit (WebSocket)."""
        import websockets

        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://")
        params = "&".join(f"{k}={v}" for k, v in (("contract", contract), ("name", name)) if v)
        async with websockets.connect(f"{ws_url}{self._p('/ws/events')}?{params}") as ws:
            async for message in ws:
                yield json.loads(message)

    async def blocks(self) -> AsyncIterator[dict[str, Any]]:
        """Yield block headers as they commit (WebSocket)."""
        import websockets

        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://")
        async with websockets.connect(f"{ws_url}{self._p('/ws/blocks')}") as ws:
            async for message in ws:
                yield json.loads(message)
