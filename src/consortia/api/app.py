"""REST + WebSocket API of a node, with an OpenAPI document at /openapi.json.

Transactions arrive as canonical msgpack envelopes or raw signed Ethereum transactions
(application/octet-stream; told apart by their first byte); everything else is JSON.
Errors are `{"error": {"code": ..., "message": ...}}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consortia import __version__
from consortia.api.jsonrpc import JsonRpc, RpcLimits, serve_websocket
from consortia.api.jsonview import block_json, committed_tx_json, from_plain, header_json, plain, receipt_json
from consortia.execution.errors import QueryError
from consortia.execution.keys import contract_key
from consortia.node.admission import AdmissionError
from consortia.node.runtime import CommitInfo, Node
from consortia.types import CodecError, check_value, decode, encode

# HTTP status per admission error code; anything unlisted is a 400.
STATUS_BY_CODE = {
    "duplicate_transaction": 409,
    "mempool_full": 503,
    "sender_limit": 429,
    "unknown_issuer": 403,
    "certificate_expired": 403,
    "certificate_not_yet_valid": 403,
    "certificate_revoked": 403,
    "bad_role": 403,
    "wrong_suite": 403,
    "bad_certificate": 403,
    "bad_signature": 401,
    "not_permitted": 403,
    "nonce_taken": 409,
    "account_queue_full": 429,
}
BATCH_TXS_MAX = 10_000
QUERY_ERRORS = {
    "UnknownContract": (404, "unknown_contract"),
    "UnknownMethodError": (404, "unknown_method"),
    "NotAView": (400, "not_a_view"),
    "QueryFailed": (422, "query_failed"),
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class QueryBody(msgspec.Struct, forbid_unknown_fields=True):
    contract: str
    method: str
    args: list[Any] = []


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "message": message}})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class TokenBucket:
    """Per-client request budget: `rate` per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str, cost: float = 1.0) -> bool:
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < cost:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - cost, now)
        if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
            self._buckets.clear()
        return True


BATCH_PATH = re.compile(r"/v1/channels/([^/]+)/transactions/batch")
BatchHandler = Callable[[str, Scope, Receive, Send], Awaitable[None]]


class NodeApi(FastAPI):
    """The node's FastAPI app, but the batch submission (the high-volume path) is served
    before FastAPI's middleware, routing, dependency resolution and response validation.
    The FastAPI route of the same URL documents it in the OpenAPI description (and answers
    a request with a query string, which this path leaves to it)."""

    serve_batch: BatchHandler | None = None  # (channel, scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.serve_batch is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("query_string")
        ):
            match = BATCH_PATH.fullmatch(scope["path"])
            if match is not None:
                await self.serve_batch(match.group(1), scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    node: Node,
    body_bytes_max: int = 4 << 20,
    rate_per_s: int = 50_000,
    rate_burst: int = 100_000,
    wait_timeout_ms_max: int = 60_000,
    rpc_limits: RpcLimits | None = None,
) -> FastAPI:
    # No OpenTelemetry: FastAPI would otherwise look up the global providers (reading the
    # environment) on every request, a measurable share of a node's CPU under load.
    app = NodeApi(
        title="consortia node API",
        version=__version__,
        docs_url="/docs",
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    bucket = TokenBucket(rate_per_s, rate_burst)
    registry = CollectorRegistry()
    m_height = Gauge("consortia_height", "Committed block height", registry=registry)
    m_pool = Gauge("consortia_mempool_txs", "Transactions waiting in the pool", registry=registry)
    m_committed = Gauge("consortia_committed_txs", "Transactions committed since start", registry=registry)
    m_blocks = Gauge("consortia_blocks", "Blocks committed since start", registry=registry)
    m_admitted = Gauge("consortia_admitted_txs", "Transactions admitted since start", registry=registry)
    m_rejected = Counter(
        "consortia_rejected_txs", "Transactions refused at admission", ["code"], registry=registry
    )
    m_requests = Counter("consortia_http_requests", "HTTP requests", ["status"], registry=registry)

    requests_by_status: dict[int, Any] = {}  # the counter's child per status, looked up once

    def count_request(status: int) -> None:
        child = requests_by_status.get(status)
        if child is None:
            child = requests_by_status[status] = m_requests.labels(str(status))
        child.inc()

    def refusal(scope: Scope) -> tuple[int, bytes] | None:
        """The rate and declared body-size limits: (status, body) of the refusal, if any."""
        client = scope.get("client")
        if not bucket.allow(client[0] if client else "unknown"):
            return 429, _error_body("rate_limited", "too many requests; slow down")
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > body_bytes_max):
            return 413, _error_body("body_too_large", f"request body exceeds {body_bytes_max} bytes")
        return None

    async def reply(send: Send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
        count_request(status)
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    class Limits:
        """Rate and body-size limits and the request counter, as plain ASGI (no per-request
        task or body streaming of Starlette's BaseHTTPMiddleware)."""

        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            refused = refusal(scope)
            if refused is not None:
                await reply(send, *refused)
                return
            status = 500

            async def counting_send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.inner(scope, receive, counting_send)
            finally:
                count_request(status)

    async def serve_batch(channel: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The batch submission with the limits `Limits` applies. An unexpected error is
        answered 500 and raised on to the server, as FastAPI's error middleware does."""
        try:
            refused = refusal(scope)
            if refused is not None:
                status, body = refused
            else:
                try:
                    answer = await submit_batch_body(channel, await _read_body(receive))
                except ApiError as exc:
                    status, body = exc.status, _error_body(exc.code, exc.message)
                else:
                    status, body = 200, msgspec.json.encode(answer)
        except Exception:
            await reply(send, 500, b"Internal Server Error", b"text/plain; charset=utf-8")
            raise
        await reply(send, status, body)

    app.serve_batch = serve_batch

    async def _read_body(receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > body_bytes_max:
                    raise ApiError(413, "body_too_large", f"request body exceeds {body_bytes_max} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    app.add_middleware(Limits)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    async def read_body(request: Request) -> bytes:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > body_bytes_max:
                raise ApiError(413, "body_too_large", f"request body exceeds {body_bytes_max} bytes")
        return body

    def check_channel(channel: str) -> None:
        if channel != node.config.channel:
            raise ApiError(404, "unknown_channel", f"this node does not host channel {channel!r}")

    def parse_hash(value: str, what: str) -> bytes:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ApiError(400, "bad_hash", f"{what} must be 64 hex characters") from None
        if len(raw) != 32:
            raise ApiError(400, "bad_hash", f"{what} must be 64 hex characters")
        return raw

    def commit_json(info: CommitInfo) -> dict[str, Any]:
        return {
            "status": "committed",
            "height": info.height,
            "index": info.index,
            "receipt": receipt_json(info.receipt),
        }

    async def admit(raw: bytes) -> bytes:
        try:
            return await node.submit(raw)
        except AdmissionError as exc:
            m_rejected.labels(exc.code).inc()
            raise ApiError(STATUS_BY_CODE.get(exc.code, 400), exc.code, str(exc)) from exc

    # ---- health and chain info ------------------------------------------------------------
    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "node": node.name, "height": node.ledger.height}

    @app.get("/v1/channels/{channel}/info")
    async def info(channel: str) -> dict[str, Any]:
        check_channel(channel)
        head = node.ledger.head
        assert head is not None
        return {
            "node": node.name,
            "chain_id": node.config.chain_id,
            "channel": channel,
            "height": head.height,
            "head_hash": head.hash.hex(),
            "state_root": head.state_root.hex(),
            "config_sequence": node.config.sequence,
            "consensus": node.engine.status(),
            "mempool_txs": len(node.mempool),
            "peers": node.connected_peers(),
            "halted": node.halted,
        }

    # ---- transactions ---------------------------------------------------------------------
    @app.post(
        "/v1/channels/{channel}/transactions",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def submit(
        channel: str, request: Request, wait: bool = False, timeout_ms: int = Query(30_000, ge=1)
    ) -> dict[str, Any]:
        """Submit one signed envelope; with `wait=true`, answer once it is durably committed."""
        check_channel(channel)
        tx_id = await admit(await read_body(request))
        if not wait:
            return {"tx_id": tx_id.hex(), "status": "pending"}
        info = await node.wait_committed(tx_id, min(timeout_ms, wait_timeout_ms_max) / 1000)
        if info is None:
            return {"tx_id": tx_id.hex(), "status": "pending"}
        return {"tx_id": tx_id.hex(), **commit_json(info)}

    @app.post(
        "/v1/channels/{channel}/transactions/batch",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def submit_batch(channel: str, request: Request) -> dict[str, Any]:
        """Submit a msgpack array of envelopes; each gets its own result, in order."""
        return await submit_batch_body(channel, await read_body(request))

    async def submit_batch_body(channel: str, body: bytes) -> dict[str, Any]:
        check_channel(channel)
        try:
            raws = decode(body, list[bytes])
        except CodecError as exc:
            raise ApiError(400, "malformed", f"batch must be a msgpack array of envelopes: {exc}") from exc
        if len(raws) > BATCH_TXS_MAX:
            raise ApiError(413, "batch_too_large", f"at most {BATCH_TXS_MAX} transactions per batch")
        out: list[dict[str, Any]] = []
        for res in await node.submit_many(raws):
            if isinstance(res, AdmissionError):
                m_rejected.labels(res.code).inc()
                out.append({"error": {"code": res.code, "message": str(res)}})
            else:
                out.append({"tx_id": res.hex(), "status": "pending"})
        return {"results": out}

    @app.get("/v1/channels/{channel}/transactions/{tx_id}")
    async def tx_status(
        channel: str, tx_id: str, wait: bool = False, timeout_ms: int = Query(30_000, ge=1)
    ) -> dict[str, Any]:
        check_channel(channel)
        raw_id = parse_hash(tx_id, "tx_id")
        info = node.committed_info(raw_id)
        if info is None and wait and node.is_pending(raw_id):
            info = await node.wait_committed(raw_id, min(timeout_ms, wait_timeout_ms_max) / 1000)
        if info is not None:
            block = node.ledger.block(info.height)
            assert block is not None
            return {
                "tx_id": tx_id,
                **commit_json(info),
                "transaction": committed_tx_json(block.txs[info.index]),
            }
        if node.is_pending(raw_id):
            return {"tx_id": tx_id, "status": "pending"}
        raise ApiError(404, "unknown_transaction", "no such transaction on this node")

    @app.get("/v1/channels/{channel}/transactions/{tx_id}/proof")
    async def tx_proof(channel: str, tx_id: str) -> dict[str, Any]:
        check_channel(channel)
        raw_id = parse_hash(tx_id, "tx_id")
        if node.ledger.tx_location(raw_id) is None:
            raise ApiError(404, "unknown_transaction", "no such committed transaction")
        proof = node.ledger.prove_tx(raw_id)
        block = node.ledger.block(proof.height)
        assert block is not None
        return {
            "tx_id": tx_id,
            "height": proof.height,
            "index": proof.index,
            "proof": base64.b64encode(encode(proof)).decode(),
            "block": base64.b64encode(encode(block)).decode(),
        }

    # ---- queries and state ----------------------------------------------------------------
    @app.post("/v1/channels/{channel}/query")
    async def query(channel: str, request: Request) -> dict[str, Any]:
        """Run a read-only contract method on the committed state."""
        check_channel(channel)
        try:
            body = msgspec.json.decode(await read_body(request), type=QueryBody)
            args = from_plain(body.args)
            check_value(args)
        except (msgspec.DecodeError, msgspec.ValidationError, CodecError, ValueError) as exc:
            raise ApiError(400, "malformed", f"bad query: {exc}") from exc
        try:
            result = node.query(body.contract, body.method, args)
        except QueryError as exc:
            status, code = QUERY_ERRORS.get(type(exc).__name__, (400, "query_failed"))
            raise ApiError(status, code, str(exc)) from exc
        return {"result": plain(result), "height": node.ledger.height}

    @app.get("/v1/channels/{channel}/state/{contract}/{key:path}")
    async def state(channel: str, contract: str, key: str, proof: bool = False) -> dict[str, Any]:
        """A contract's stored value; with `proof=true`, a Merkle proof against the head's state root."""
        check_channel(channel)
        try:
            skey = contract_key(contract, key)
        except ValueError as exc:
            raise ApiError(400, "bad_key", str(exc)) from exc
        raw = node.ledger.state.get(skey)
        out: dict[str, Any] = {
            "contract": contract,
            "key": key,
            "exists": raw is not None,
            "value": None if raw is None else base64.b64encode(raw).decode(),
        }
        if raw is not None:
            from consortia.types import decode_value

            out["decoded"] = plain(decode_value(raw))
        if proof:
            head = node.ledger.head
            assert head is not None
            out["state_key"] = base64.b64encode(skey).decode()
            out["proof"] = base64.b64encode(encode(node.ledger.prove(skey))).decode()
            block = node.ledger.block(head.height)
            assert block is not None
            out["header"] = base64.b64encode(encode(block.header)).decode()
            out["certificate"] = (
                None if block.certificate is None else base64.b64encode(encode(block.certificate)).decode()
            )
        return out

    @app.get("/v1/channels/{channel}/history/{contract}/{key:path}")
    async def history(
        channel: str, contract: str, key: str, limit: int = Query(100, ge=1, le=10_000)
    ) -> dict[str, Any]:
        check_channel(channel)
        try:
            skey = contract_key(contract, key)
        except ValueError as exc:
            raise ApiError(400, "bad_key", str(exc)) from exc
        from consortia.types import decode_value

        versions = [
            {
                "height": v.height,
                "tx_index": v.tx_index,
                "tx_id": v.tx_id.hex(),
                "deleted": v.value is None,
                "value": None if v.value is None else plain(decode_value(v.value)),
            }
            for v in node.ledger.history(skey, limit)
        ]
        return {"contract": contract, "key": key, "versions": versions}

    # ---- blocks ---------------------------------------------------------------------------
    @app.get("/v1/channels/{channel}/blocks/{height}")
    async def block_by_height(channel: str, height: int, raw: bool = False) -> Any:
        check_channel(channel)
        block = node.ledger.block(height) if height >= 0 else None
        if block is None:
            raise ApiError(404, "unknown_block", f"no block at height {height}")
        if raw:
            return Response(encode(block), media_type="application/octet-stream")
        return block_json(block)

    @app.get("/v1/channels/{channel}/blocks/hash/{block_hash}")
    async def block_by_hash(channel: str, block_hash: str) -> dict[str, Any]:
        check_channel(channel)
        block = node.ledger.block_by_hash(parse_hash(block_hash, "block hash"))
        if block is None:
            raise ApiError(404, "unknown_block", "no block with that hash")
        return block_json(block)

    # ---- subscriptions --------------------------------------------------------------------
    async def pump(
        ws: WebSocket, q: asyncio.Queue[Any], render: Callable[[Any], list[dict[str, Any]]]
    ) -> None:
        """Forward queue items until the client goes away (noticed even while idle)."""

        async def sender() -> None:
            while True:
                for message in render(await q.get()):
                    await ws.send_json(message)

        async def receiver() -> None:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.ensure_future(sender()), asyncio.ensure_future(receiver())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @app.websocket("/v1/channels/{channel}/ws/blocks")
    async def ws_blocks(ws: WebSocket, channel: str) -> None:
        """Every committed block's header, as it commits."""
        await ws.accept()
        if channel != node.config.channel:
            await ws.close(code=4404, reason="unknown channel")
            return
        q = node.subscribe_blocks()
        try:
            await pump(ws, q, lambda block: [{"type": "block", "header": header_json(block.header)}])
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            node.unsubscribe_blocks(q)

    @app.websocket("/v1/channels/{channel}/ws/events")
    async def ws_events(
        ws: WebSocket, channel: str, contract: str | None = None, name: str | None = None
    ) -> None:
        """Contract events of committed transactions, optionally filtered by contract and name."""
        await ws.accept()
        if channel != node.config.channel:
            await ws.close(code=4404, reason="unknown channel")
            return

        def render(item: tuple[int, bytes, Any]) -> list[dict[str, Any]]:
            height, tx_id, receipt = item
            return [
                {
                    "type": "event",
                    "height": height,
                    "tx_id": tx_id.hex(),
                    "contract": ev.contract,
                    "name": ev.name,
                    "payload": plain(ev.payload),
                }
                for ev in receipt.events
                if (contract is None or ev.contract == contract) and (name is None or ev.name == name)
            ]

        q = node.subscribe_events()
        try:
            await pump(ws, q, render)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            node.unsubscribe_events(q)

    # ---- Ethereum JSON-RPC -----------------------------------------------------------------
    rpc = JsonRpc(node, rpc_limits)

    @app.post("/jsonrpc")
    async def jsonrpc(request: Request) -> Response:
        """Ethereum JSON-RPC 2.0, single or batch (methods listed in consortia.api.jsonrpc)."""
        answer = await rpc.handle(await read_body(request))
        if answer is None:
            return Response(status_code=204)
        return Response(msgspec.json.encode(answer), media_type="application/json")

    @app.websocket("/jsonrpc")
    async def jsonrpc_ws(ws: WebSocket) -> None:
        """Ethereum JSON-RPC over WebSocket: every method above, plus eth_subscribe."""
        client = ws.client.host if ws.client else "unknown"
        await serve_websocket(ws, rpc, body_bytes_max, lambda: bucket.allow(client))

    # ---- metrics --------------------------------------------------------------------------
    @app.get("/metrics")
    async def metrics() -> Response:
        m_height.set(node.ledger.height)
        m_pool.set(len(node.mempool))
        m_committed.set(node.stats.committed_txs)
        m_blocks.set(node.stats.blocks)
        m_admitted.set(node.stats.admitted)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
