"""Timestamps block commits as every node announces them on its block stream.

A background thread subscribes to `/v1/channels/<ch>/ws/blocks` of every node and records
(height, tx count, monotonic time) per node. The node drops the oldest queued header when a
subscriber falls behind, so a height can be missed; `commit_times` then uses the first later
height seen, which can only overstate a latency, never understate it. If the WebSocket
cannot be opened the thread polls `/info` every `poll_ms` instead.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

from consortia.bench.minihttp import HttpError, Pool

POLL_MS = 20


@dataclass
class NodeBlocks:
    """What one node announced: height -> (tx count, first time seen)."""

    seen: dict[int, tuple[int, float]] = field(default_factory=dict)
    via: str = "websocket"

    def commit_times(self, first: int, last: int) -> dict[int, float]:
        """Time each height in [first, last] was known committed on this node."""
        out: dict[int, float] = {}
        later: float | None = None
        for h in range(last, first - 1, -1):
            got = self.seen.get(h)
            if got is not None:
                later = got[1] if later is None else min(later, got[1])
            if later is not None:
                out[h] = later
        return out


class BlockObserver:
    def __init__(self, urls: list[str], channel: str) -> None:
        self.urls = urls
        self.channel = channel
        self.nodes = [NodeBlocks() for _ in urls]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="block-observer", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        self._ready.wait(timeout_s)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connected = [asyncio.Event() for _ in self.urls]
        tasks = [asyncio.create_task(self._watch(i, connected[i])) for i in range(len(self.urls))]
        await asyncio.wait([asyncio.create_task(e.wait()) for e in connected], timeout=5.0)
        self._ready.set()
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self, i: int, connected: asyncio.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        url = self.urls[i].replace("http://", "ws://", 1) + f"/v1/channels/{self.channel}/ws/blocks"
        node = self.nodes[i]
        try:
            async with connect(url, max_size=1 << 20, ping_interval=None) as ws:
                connected.set()
                async for message in ws:
                    now = time.monotonic()
                    header = json.loads(message)["header"]
                    node.seen.setdefault(int(header["height"]), (int(header["tx_count"]), now))
        except (OSError, WebSocketException, ValueError, KeyError):
            node.via = "polling"
            connected.set()
            await self._poll(i)

    async def _poll(self, i: int) -> None:
        pool = Pool(self.urls[i], 1)
        node = self.nodes[i]
        last = -1
        while True:
            try:
                status, data, _ = await pool.request("GET", f"/v1/channels/{self.channel}/info")
                height = int(json.loads(data)["height"]) if status == 200 else last
            except (HttpError, ValueError, KeyError):
                height = last
            now = time.monotonic()
            for h in range(last + 1, height + 1):
                node.seen.setdefault(h, (-1, now))  # tx count unknown when polling
            last = max(last, height)
            await asyncio.sleep(POLL_MS / 1000)
