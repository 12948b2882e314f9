"""The peer network: one mutually authenticated TLS connection per pair of validators.

For each pair exactly one side dials (the smaller name, when both have addresses), so
a pair never holds two connections; a newer authenticated connection from the same
peer replaces the old one (the peer restarted). Addresses are "host:port" with host
names resolved at every connect, so one configuration works across machines. Dialing
retries with bounded exponential backoff and jitter.

Sending never blocks: frames go to a bounded per-peer queue (see `Connection`). A
broadcast is encoded once and the same bytes are queued to every peer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from consortia.identity.errors import IdentityError
from consortia.identity.msp import MSP
from consortia.network.connection import Connection, NetworkLimits
from consortia.network.errors import BadNetworkConfig, HelloRefused
from consortia.network.framing import KIND_CONSENSUS, encode_frame
from consortia.network.hello import HelloVerifier, decode_hello, make_hello
from consortia.network.sync import SyncLimits, SyncServer
from consortia.network.tls import TlsContexts
from consortia.types import ChannelConfig, Validator, encode

log = logging.getLogger("consortia.network")

MessageHandler = Callable[[str, bytes], None]


class NodeSigner(Protocol):
    """The node's identity: its certificate and a signer with the certificate's key
    (consortia.identity.wallet.NodeIdentity fits)."""

    @property
    def cert_der(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class PeerStats:
    connected: bool
    frames_in: int  # on the current connection
    frames_out: int  # on the current connection
    queued: int
    dropped: int  # since the network started, over all connections


def split_address(address: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6]:port"; raises BadNetworkConfig."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise BadNetworkConfig(f"bad peer address {address!r}; expected host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise BadNetworkConfig(f"bad port in peer address {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class PeerNetwork:
    """Connections to every other validator of one channel."""

    def __init__(
        self,
        node_name: str,
        config: ChannelConfig,
        tls: TlsContexts,
        msp: MSP,
        identity: NodeSigner,
        on_message: MessageHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: NetworkLimits | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        """`on_message(sender, payload)` receives every consensus payload, `sender` being
        the validator name proven by the peer's certificate. `host`/`port` is where to
        listen (port 0 picks a free one). `clock_ms` dates certificate checks.

        Raises BadNetworkConfig when `node_name` is not a validator of `config` whose
        certificate is `identity.cert_der`, or for bad limits or TLS CA certificates.
        """
        self.node_name = node_name
        self.limits = limits if limits is not None else NetworkLimits()
        self.limits.validate()
        self._tls = tls
        self._identity = identity
        self._on_message = on_message
        self._host, self._port = host, port
        self._clock_ms = clock_ms
        self._handlers: dict[str, MessageHandler] = {}
        self._peers: dict[str, Connection] = {}  # authenticated, by validator name
        self._all: set[Connection] = set()
        self._dropped: dict[str, int] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None
        self._closing = False
        self._changed = asyncio.Event()
        self._rng = random.Random()  # backoff jitter only; never reaches state
        self._apply_config(config, msp)

    def _apply_config(self, config: ChannelConfig, msp: MSP) -> None:
        validators = {v.name: v for v in config.consensus.validators}
        me = validators.get(self.node_name)
        if me is None:
            raise BadNetworkConfig(f"{self.node_name!r} is not a validator of channel {config.channel!r}")
        if me.cert != self._identity.cert_der:
            raise BadNetworkConfig(f"the identity certificate is not the one configured for {me.name!r}")
        self._verifier = HelloVerifier(config, msp)
        self.config, self._msp = config, msp
        self._me, self._validators = me, validators

    # ---- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Listen and start dialing the peers this node dials. Raises OSError (bind)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self._new_connection(None),
            self._host,
            self._port,
            ssl=self._tls.server,
            ssl_handshake_timeout=self.limits.hello_timeout_ms / 1000,
            reuse_address=True,
        )
        self._start_dialers()

    @property
    def listen_port(self) -> int:
        """The bound port (useful after listening on port 0); 0 before start()."""
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, timeout_s: float = 2.0) -> None:
        """Stop listening and dialing, flush queues and close every connection."""
        self._closing = True
        for task in self._dialers.values():
            task.cancel()
        await asyncio.gather(*self._dialers.values(), return_exceptions=True)
        self._dialers.clear()
        if self._server is not None:
            self._server.close()
        conns = [c for c in self._all if c.transport is not None]
        self._all.clear()
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=timeout_s)
            for conn in conns:
                if not conn.closed.done() and conn.transport is not None:
                    conn.transport.abort()
        self._notify()

    def update_config(self, config: ChannelConfig, msp: MSP) -> None:
        """Adopt a new channel configuration: drop peers that are no longer validators
        or whose certificate no longer validates (revoked), dial new validators.

        Raises BadNetworkConfig as the constructor does (nothing changes then).
        """
        self._apply_config(config, msp)
        now = self._clock_ms()
        for name, conn in list(self._peers.items()):
            current = self._validators.get(name)
            reason = None
            if current is None or conn.peer is None or current.cert != conn.peer.cert:
                reason = "no longer a validator with this certificate"
            else:
                try:
                    msp.verify_block_signer(current.cert, now)
                except IdentityError as exc:
                    reason = str(exc)
            if reason is not None:
                conn.abort(HelloRefused(f"{name}: {reason}"))
        for name, task in list(self._dialers.items()):
            if name not in self._validators or not self._we_dial(self._validators[name]):
                task.cancel()
                del self._dialers[name]
        if self._server is not None and not self._closing:
            self._start_dialers()

    # ---- sending -------------------------------------------------------------------
    def send(self, peer: str, payload: bytes) -> bool:
        """Queue a consensus payload for `peer`; False when it is not connected.

        Raises FrameTooLarge for a payload above the frame limit.
        """
        return self.send_kind(peer, KIND_CONSENSUS, payload)

    def send_kind(self, peer: str, kind: str, payload: bytes, bulk: bool = False) -> bool:
        """As send, for any message kind; `bulk` frames (e.g. transaction gossip) leave
        after every other queued frame and are dropped first. Raises FrameTooLarge."""
        conn = self._peers.get(peer)
        if conn is None:
            return False
        conn.send(encode_frame(kind, payload, self.limits.frame_bytes_max), bulk)
        return True

    def broadcast(self, payload: bytes) -> int:
        """Queue a consensus payload to every connected peer (encoded once); returns how
        many peers it was queued for. Raises FrameTooLarge."""
        return self.broadcast_kind(KIND_CONSENSUS, payload)

    def broadcast_kind(self, kind: str, payload: bytes, bulk: bool = False) -> int:
        """As broadcast, for any message kind (`bulk` as in send_kind): the frame is encoded
        once and the same bytes queued to every peer. Raises FrameTooLarge."""
        if not self._peers:
            return 0
        frame = encode_frame(kind, payload, self.limits.frame_bytes_max)
        for conn in self._peers.values():
            conn.send(frame, bulk)
        return len(self._peers)

    def add_handler(self, kind: str, handler: MessageHandler) -> None:
        """Route frames of `kind` (other than consensus) to `handler(sender, payload)`."""
        if kind == KIND_CONSENSUS:
            raise BadNetworkConfig("consensus frames go to on_message")
        self._handlers[kind] = handler

    def serve_sync(
        self, read_block: Callable[[int], bytes | None], limits: SyncLimits | None = None
    ) -> SyncServer:
        """Answer peers' block sync requests from `read_block(height)` (encoded Block or None)."""
        return SyncServer(self, read_block, limits)

    # ---- observing -----------------------------------------------------------------
    def connected_peers(self) -> list[str]:
        return sorted(self._peers)

    async def wait_connected(self, peers: Iterable[str] | None = None, timeout_s: float = 10.0) -> bool:
        """Wait until every peer in `peers` (default: every other validator) is
        connected; False on timeout."""
        wanted = set(peers) if peers is not None else set(self._validators) - {self.node_name}
        try:
            async with asyncio.timeout(timeout_s):
                while not wanted <= self._peers.keys():
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def stats(self) -> dict[str, PeerStats]:
        out: dict[str, PeerStats] = {}
        for name in sorted(self._validators):
            if name == self.node_name:
                continue
            conn = self._peers.get(name)
            dropped = self._dropped.get(name, 0) + (conn.dropped if conn is not None else 0)
            if conn is None:
                out[name] = PeerStats(False, 0, 0, 0, dropped)
            else:
                out[name] = PeerStats(True, conn.frames_in, conn.frames_out, conn.queued, dropped)
        return out

    # ---- dialing -------------------------------------------------------------------
    def _we_dial(self, peer: Validator) -> bool:
        """Which side of a pair dials: the smaller name when both can be dialed,
        otherwise the side that knows an address of the other."""
        if peer.name == self.node_name or not peer.address:
            return False
        return not self._me.address or self.node_name < peer.name

    def _start_dialers(self) -> None:
        for peer in self._validators.values():
            if self._we_dial(peer) and peer.name not in self._dialers:
                self._dialers[peer.name] = asyncio.create_task(
                    self._dial_loop(peer.name), name=f"dial-{peer.name}"
                )

    async def _dial_loop(self, name: str) -> None:
        failures = 0
        limits = self.limits
        while not self._closing:
            peer = self._validators.get(name)
            if peer is None:
                return
            started = time.monotonic()
            try:
                conn = await self._dial(peer)
                await asyncio.shield(conn.closed)
                lived_ms = (time.monotonic() - started) * 1000
                failures = 0 if lived_ms >= limits.stable_ms else failures + 1
            except Exception as exc:  # whatever the cause, keep retrying (bounded backoff)
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "%s: cannot connect to %s at %s: %s", self.node_name, name, peer.address, exc)
            delay_ms = min(limits.reconnect_max_ms, limits.reconnect_min_ms * 2 ** min(failures, 30))
            await asyncio.sleep(self._rng.uniform(delay_ms / 2, delay_ms) / 1000)

    async def _dial(self, peer: Validator) -> Connection:
        """Connect, complete TLS and HELLO. Raises OSError, TimeoutError, ConnectionError,
        BadNetworkConfig."""
        host, port = split_address(peer.address)
        loop = asyncio.get_running_loop()
        conn: Connection | None = None

        def factory() -> Connection:
            nonlocal conn
            conn = self._new_connection(peer.name)
            return conn

        try:
            async with asyncio.timeout(self.limits.connect_timeout_ms / 1000):
                await loop.create_connection(
                    factory,
                    host,
                    port,
                    ssl=self._tls.client,
                    server_hostname=host,
                    ssl_handshake_timeout=self.limits.hello_timeout_ms / 1000,
                )
        except BaseException:
            if conn is not None:  # uvloop makes the protocol before the connect succeeds
                self._all.discard(conn)
            raise
        if conn is None:  # pragma: no cover - create_connection always calls the factory
            raise ConnectionError("no connection")
        try:
            # the connection's own HELLO timer aborts it, which fails `ready`
            await asyncio.shield(conn.ready)
        except asyncio.CancelledError:
            conn.abort(ConnectionError("dialing cancelled"))
            raise
        return conn

    # ---- ConnectionOwner -----------------------------------------------------------
    def _new_connection(self, dialed: str | None) -> Connection:
        conn = Connection(self, self.limits, dialed)
        self._all.add(conn)
        return conn

    def hello_for(self, challenge: bytes) -> bytes:
        hello = make_hello(
            self.config, self._identity.cert_der, self._identity.sign, self._tls.cert_der, challenge
        )
        return encode(hello)

    def authenticate(self, conn: Connection, hello_payload: bytes) -> Validator:
        hello = decode_hello(hello_payload)
        peer = self._verifier.verify(hello, conn.peer_tls_cert, conn.challenge, self._clock_ms())
        if peer.name == self.node_name:
            raise HelloRefused("connected to ourselves")
        if conn.dialed is not None and peer.name != conn.dialed:
            raise HelloRefused(f"dialed {conn.dialed!r} but reached {peer.name!r}")
        if conn.dialed is None and self._we_dial(peer):
            raise HelloRefused(f"{peer.name!r} must wait for {self.node_name!r} to dial it")
        if self._closing:
            raise HelloRefused("shutting down")
        return peer

    def connection_ready(self, conn: Connection) -> None:
        name = conn.name
        old = self._peers.get(name)
        self._peers[name] = conn
        if old is not None and old is not conn:
            log.info("%s: %s reconnected; closing its previous connection", self.node_name, name)
            old.close()
        log.info("%s: connected to %s", self.node_name, name)
        self._notify()

    def frame_received(self, conn: Connection, kind: str, payload: bytes) -> None:
        handler = self._on_message if kind == KIND_CONSENSUS else self._handlers.get(kind)
        if handler is None:
            log.debug("%s: ignoring %r frame from %s", self.node_name, kind, conn.name)
            return
        try:
            handler(conn.name, payload)
        except Exception:  # a handler's bug must not cut the peer off; it is logged
            log.exception("%s: handler for %r frames from %s failed", self.node_name, kind, conn.name)

    def connection_closed(self, conn: Connection) -> None:
        self._all.discard(conn)
        if conn.peer is None:
            return
        name = conn.name
        self._dropped[name] = self._dropped.get(name, 0) + conn.dropped
        if self._peers.get(name) is conn:
            del self._peers[name]
            log.info("%s: disconnected from %s", self.node_name, name)
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
