"""One authenticated peer connection: framing, the HELLO handshake, a coalescing writer.

A `Connection` is an asyncio protocol on a TLS transport. Before HELLO completes only
handshake frames, no larger than `handshake_frame_bytes_max`, are accepted; afterwards
every frame goes to the owner (the `PeerNetwork`) tagged with the peer's authenticated
name. Outgoing frames queue and leave in one write per loop turn, and stop while the
transport's buffer is above its high-water mark (a slow peer), so the queue — bounded,
dropping the oldest — absorbs the difference without blocking anyone. Bulk frames
(transaction gossip) have a queue of their own that is written after the other one, so
consensus and sync messages never wait behind, or are dropped for, gossip.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Protocol, cast

from consortia.network.errors import BadFrame, BadNetworkConfig, HelloRefused, NetworkError
from consortia.network.framing import (
    FRAME_BYTES_MAX,
    HANDSHAKE_KINDS,
    KIND_CHALLENGE,
    KIND_HELLO,
    LENGTH_MAX,
    FrameDecoder,
    OutboundQueue,
    decode_frame,
    encode_frame,
)
from consortia.network.hello import CHALLENGE_BYTES, Challenge, decode_challenge
from consortia.types import Validator, encode

log = logging.getLogger("consortia.network")


@dataclass(frozen=True)
class NetworkLimits:
    """Every bound of the peer network, checked once by `validate`."""

    frame_bytes_max: int = FRAME_BYTES_MAX
    handshake_frame_bytes_max: int = 64 * 1024  # a certificate and a signature
    queue_frames_max: int = 16_384  # per peer
    queue_bytes_max: int = 64 * 1024 * 1024  # per peer
    write_buffer_bytes_max: int = 4 * 1024 * 1024  # transport high-water mark
    hello_timeout_ms: int = 5_000  # TLS handshake, then HELLO, each
    connect_timeout_ms: int = 5_000
    reconnect_min_ms: int = 50
    reconnect_max_ms: int = 5_000
    stable_ms: int = 1_000  # a connection that lived this long resets the backoff

    def validate(self) -> None:
        """Raises BadNetworkConfig for a limit out of range."""
        if not 1 <= self.frame_bytes_max <= LENGTH_MAX:
            raise BadNetworkConfig(f"frame_bytes_max must be 1..{LENGTH_MAX}")
        for name in (
            "handshake_frame_bytes_max",
            "queue_frames_max",
            "queue_bytes_max",
            "write_buffer_bytes_max",
            "hello_timeout_ms",
            "connect_timeout_ms",
            "reconnect_min_ms",
            "stable_ms",
        ):
            if getattr(self, name) < 1:
                raise BadNetworkConfig(f"{name} must be at least 1")
        if self.reconnect_max_ms < self.reconnect_min_ms:
            raise BadNetworkConfig("reconnect_max_ms must be at least reconnect_min_ms")


class ConnectionOwner(Protocol):
    """What a connection needs from the network that owns it."""

    def hello_for(self, challenge: bytes) -> bytes:
        """The encoded Hello answering the peer's challenge."""
        ...

    def authenticate(self, conn: Connection, hello_payload: bytes) -> Validator:
        """Raises HelloRefused."""
        ...

    def connection_ready(self, conn: Connection) -> None: ...

    def frame_received(self, conn: Connection, kind: str, payload: bytes) -> None: ...

    def connection_closed(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    def __init__(self, owner: ConnectionOwner, limits: NetworkLimits, dialed: str | None = None) -> None:
        """`dialed` is the validator we meant to reach when we dialed; None when accepted."""
        self.owner = owner
        self.limits = limits
        self.dialed = dialed
        self.peer: Validator | None = None
        self.peer_tls_cert: bytes = b""
        self.challenge = os.urandom(CHALLENGE_BYTES)
        self.transport: asyncio.Transport | None = None
        self.frames_in = 0
        self.frames_out = 0
        self._decoder = FrameDecoder(min(limits.handshake_frame_bytes_max, limits.frame_bytes_max))
        self._queue = OutboundQueue(limits.queue_frames_max, limits.queue_bytes_max)
        self._bulk = OutboundQueue(limits.queue_frames_max, limits.queue_bytes_max)
        self._answered = False  # we sent our Hello
        self._dead = False  # aborted, closing or closed: nothing more in or out
        self._paused = False
        self._flush_handle: asyncio.Handle | None = None
        self._hello_timer: asyncio.TimerHandle | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.ready: asyncio.Future[Validator] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    @property
    def name(self) -> str:
        return self.peer.name if self.peer is not None else "?"

    @property
    def is_ready(self) -> bool:
        return self.peer is not None and not self._dead

    @property
    def dropped(self) -> int:
        return self._queue.dropped + self._bulk.dropped

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._bulk)

    # ---- asyncio protocol callbacks ------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # create_connection/create_server give one
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        peer_cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not peer_cert:  # only possible if the TLS setup were wrong: refuse loudly
            self.abort(HelloRefused("no TLS peer certificate"))
            return
        self.peer_tls_cert = peer_cert
        high = self.limits.write_buffer_bytes_max
        transport.set_write_buffer_limits(high=high, low=high // 4)
        transport.write(encode_frame(KIND_CHALLENGE, encode(Challenge(self.challenge))))
        self._hello_timer = self._loop.call_later(self.limits.hello_timeout_ms / 1000, self._hello_timeout)

    def data_received(self, data: bytes) -> None:
        try:
            bodies = self._decoder.feed(data)
            for body in bodies:
                if self._dead:  # a handler may have closed us mid-batch
                    return
                frame = decode_frame(body)
                self.frames_in += 1
                if self.peer is not None and frame.kind not in HANDSHAKE_KINDS:
                    self.owner.frame_received(self, frame.kind, frame.payload)
                else:
                    self._handshake(frame.kind, frame.payload)
        except NetworkError as exc:
            self.abort(exc)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._dead = True
        if self.closed.done():
            return
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.closed.set_result(None)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost before HELLO: {exc}"))
            self.ready.exception()  # retrieved: nobody may be waiting (accepted side)
        self.owner.connection_closed(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._schedule_flush()

    # ---- handshake ---------------------------------------------------------------
    def _handshake(self, kind: str, payload: bytes) -> None:
        """Raises HelloRefused, BadFrame."""
        if kind == KIND_CHALLENGE and not self._answered and self.peer is None:
            nonce = decode_challenge(payload)
            self._answered = True
            self._write_now(encode_frame(KIND_HELLO, self.owner.hello_for(nonce)))
        elif kind == KIND_HELLO and self._answered and self.peer is None:
            validator = self.owner.authenticate(self, payload)
            self.peer = validator
            self._decoder.frame_bytes_max = self.limits.frame_bytes_max
            if self._hello_timer is not None:
                self._hello_timer.cancel()
            self.ready.set_result(validator)
            self.owner.connection_ready(self)
        else:
            raise BadFrame(f"unexpected {kind!r} frame during the handshake")

    def _hello_timeout(self) -> None:
        if self.peer is None:
            self.abort(HelloRefused(f"no valid HELLO within {self.limits.hello_timeout_ms} ms"))

    # ---- writing -----------------------------------------------------------------
    def send(self, frame: bytes, bulk: bool = False) -> None:
        """Queue an encoded frame; it leaves with the others queued this loop turn, `bulk`
        frames after all others."""
        if self._dead:
            return
        (self._bulk if bulk else self._queue).push(frame)
        self.frames_out += 1
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and not self._paused:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        transport = self.transport
        if self._paused or self._dead or transport is None:
            return
        for queue in (self._queue, self._bulk):
            data = queue.take()
            if data:
                transport.write(data)

    def _write_now(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    # ---- closing -----------------------------------------------------------------
    def abort(self, reason: Exception) -> None:
        """Drop the connection at once (protocol violation or refusal), logging why."""
        who = self.name if self.peer is not None else (self.dialed or self._address())
        log.warning("closing connection to %s: %s: %s", who, type(reason).__name__, reason)
        self._dead = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Graceful: queued frames are written first."""
        if self.transport is not None and not self._dead:
            self._dead = True
            for queue in (self._queue, self._bulk):
                data = queue.take()
                if data:
                    self.transport.write(data)
            self.transport.close()

    def _address(self) -> str:
        if self.transport is None:
            return "?"
        return str(self.transport.get_extra_info("peername"))
