"""A minimal keep-alive HTTP/1.1 client for the load generator.

The load generator shares the host's cores with the nodes it measures, so every microsecond
it spends per request is taken from the platform. This client does only what the node's API
needs (POST/GET with a Content-Length body, responses with Content-Length) at a fraction of
a general-purpose client's cost per request.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from consortia.bench.errors import BenchError

HEADER_BYTES_MAX = 64 * 1024
# Servers close idle keep-alive connections (uvicorn after 5 s); never reuse one idle this long.
IDLE_S_MAX = 3.0


class HttpError(BenchError):
    """The connection failed or the server answered with something this client cannot read."""


class StaleConnection(HttpError):
    """The server had closed the connection before this request: nothing reached it."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.used = time.monotonic()
        self.requests = 0

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/octet-stream"
    ) -> tuple[int, bytes]:
        """Send one request and read its response: (status, body).

        Raises StaleConnection when a reused connection was already closed by the server
        (no byte of a response arrived), HttpError when it breaks otherwise or the response
        is not understood.
        """
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.requests += 1
        try:
            self.writer.write(head + body)
            await self.writer.drain()
            try:
                status_line = await self.reader.readuntil(b"\r\n")
            except (ConnectionResetError, asyncio.IncompleteReadError) as exc:
                partial = getattr(exc, "partial", b"")
                if self.requests > 1 and not partial:
                    raise StaleConnection(f"{method} {path}: connection closed by the server") from exc
                raise
            length = None
            while True:
                line = await self.reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length is None:
                raise HttpError("response without Content-Length")
            data = await self.reader.readexactly(length)
        except StaleConnection:
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {status_line!r}")
        self.used = time.monotonic()
        return int(parts[1]), data

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Up to `size` keep-alive connections to one server, handed out one request at a time."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise BenchError(f"the load generator speaks plain http only, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/octet-stream"
    ) -> tuple[int, bytes, float]:
        """(status, body, when the request left): it may wait here for a free connection.

        Raises HttpError when the request fails (the connection is then dropped).
        """
        async with self._slots:
            conn = await self._take()
            sent = time.monotonic()
            try:
                status, data = await conn.request(method, self.prefix + path, body, content_type)
            except StaleConnection:
                conn.close()  # the request never reached the server: send it on a new connection
                conn = await self._connect()
                sent = time.monotonic()
                try:
                    status, data = await conn.request(method, self.prefix + path, body, content_type)
                except HttpError:
                    conn.close()
                    raise
            except HttpError:
                conn.close()
                raise
            self._idle.append(conn)
            return status, data, sent

    async def _take(self) -> Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.used < IDLE_S_MAX:
                return conn
            conn.close()
        return await self._connect()

    async def _connect(self) -> Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=HEADER_BYTES_MAX)
        except OSError as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return Connection(reader, writer, f"{self.host}:{self.port}")

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
