"""JSON-RPC over WebSocket: every HTTP method, plus eth_subscribe / eth_unsubscribe.

Requests on one connection are answered in order. A subscription's notifications follow
the eth_subscribe answer that created it, in the eth_subscription format:
{"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": id, "result": ...}}
with a header object (newHeads) or one log object per notification (logs). Subscriptions
follow committed blocks through the node's block feed; a connection that cannot keep up
loses the oldest blocks it has not been sent (the feed is bounded), never the node's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from consortia.api.jsonrpc.codec import INVALID_REQUEST, LIMIT_EXCEEDED, RpcError
from consortia.api.jsonrpc.logs import LogCriteria, block_logs
from consortia.api.jsonrpc.methods import JsonRpc
from consortia.types import Block, encode


@dataclass(slots=True)
class _Subscription:
    kind: str  # "newHeads" or "logs"
    criteria: LogCriteria | None
    queue: asyncio.Queue[Block]
    task: asyncio.Task[None] | None = None


class WsSession:
    """One WebSocket connection's subscriptions and its serialised writes."""

    def __init__(self, ws: WebSocket, rpc: JsonRpc) -> None:
        self.ws, self.rpc, self.node = ws, rpc, rpc.node
        self._subs: dict[str, _Subscription] = {}
        self._send_lock = asyncio.Lock()

    def subscribe(self, kind: str, criteria: LogCriteria | None) -> str:
        """A new subscription's id; it starts delivering once `start` runs (after the
        answer was sent), and sees every block committed from now on."""
        most = self.rpc.limits.subscriptions_max
        if len(self._subs) >= most:
            raise RpcError(LIMIT_EXCEEDED, f"too many subscriptions: at most {most} per connection")
        subscription_id = "0x" + secrets.token_hex(16)
        self._subs[subscription_id] = _Subscription(kind, criteria, self.node.subscribe_blocks())
        return subscription_id

    def unsubscribe(self, subscription_id: str) -> bool:
        sub = self._subs.pop(subscription_id, None)
        if sub is None:
            return False
        self.node.unsubscribe_blocks(sub.queue)
        if sub.task is not None:
            sub.task.cancel()
        return True

    def start(self) -> None:
        for subscription_id, sub in self._subs.items():
            if sub.task is None:
                sub.task = asyncio.create_task(self._forward(subscription_id, sub))

    async def close(self) -> None:
        tasks = [sub.task for sub in self._subs.values() if sub.task is not None]
        for subscription_id in list(self._subs):
            self.unsubscribe(subscription_id)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def send(self, document: Any) -> None:
        text = msgspec.json.encode(document).decode()
        async with self._send_lock:
            await self.ws.send_text(text)

    async def _forward(self, subscription_id: str, sub: _Subscription) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                block = await sub.queue.get()
                for result in self._render(sub, block):
                    await self.send(
                        {
                            "jsonrpc": "2.0",
                            "method": "eth_subscription",
                            "params": {"subscription": subscription_id, "result": result},
                        }
                    )

    def _render(self, sub: _Subscription, block: Block) -> list[dict[str, Any]]:
        view = self.rpc.view(block)
        if sub.criteria is None:
            return [view.header_object(len(encode(block)))]
        return block_logs(view, sub.criteria)


async def serve_websocket(
    ws: WebSocket, rpc: JsonRpc, message_bytes_max: int, allow: Callable[[], bool] = lambda: True
) -> None:
    """Answer JSON-RPC messages on `ws` until the client goes away.

    `allow` is asked once per message (the API's per-client rate limit); a message it
    refuses is answered with LIMIT_EXCEEDED and not run.
    """
    await ws.accept()
    session = WsSession(ws, rpc)
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            body = message.get("text") or message.get("bytes") or b""
            if len(body) > message_bytes_max:
                error = RpcError(INVALID_REQUEST, f"message exceeds {message_bytes_max} bytes")
                answer: Any = {"jsonrpc": "2.0", "id": None, "error": error.json()}
            elif not allow():
                answer = _refusal(body, RpcError(LIMIT_EXCEEDED, "too many requests; slow down"))
            else:
                answer = await rpc.handle(body, session)
            if answer is not None:
                await session.send(answer)
            session.start()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await session.close()


def _refusal(body: str | bytes, error: RpcError) -> Any:
    """`error` as the answer to every request in `body`, under their ids, so clients that
    wait for an answer by id get one."""
    try:
        request = msgspec.json.decode(body)
    except msgspec.DecodeError:
        request = None
    requests = request if isinstance(request, list) else [request]
    answers = [
        {"jsonrpc": "2.0", "id": r.get("id") if isinstance(r, dict) else None, "error": error.json()}
        for r in requests
    ]
    return answers if isinstance(request, list) else answers[0]
