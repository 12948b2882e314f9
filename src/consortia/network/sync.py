"""Block sync: fetch committed blocks a node is missing from its peers.

`SyncRequest(request_id, from_height, to_height)` is answered by
`SyncResponse(request_id, blocks)`: encoded Blocks (with their commit certificates) from
`from_height` on, in order, at most `blocks_max` of them and, past the first, at most
`bytes_max` bytes; fewer (or none) when the server has fewer. The client never trusts a
server: each block must have the next height and pass the node's `verify` (commit
certificate against the channel configuration, parent hash linkage) before `apply`
gets it. A server that answers with a bad block is excluded for the rest of the sync;
one that is silent or has nothing is skipped in rotation.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from consortia.network.errors import BadNetworkConfig, FrameTooLarge, SyncError
from consortia.network.framing import KIND_SYNC_REQUEST, KIND_SYNC_RESPONSE
from consortia.types import Block, CodecError, decode, encode

log = logging.getLogger("consortia.network")


class SyncRequest(msgspec.Struct, array_like=True, frozen=True):
    request_id: int
    from_height: int
    to_height: int  # inclusive


class SyncResponse(msgspec.Struct, array_like=True, frozen=True):
    request_id: int
    blocks: list[bytes]  # encoded Blocks, heights from_height, from_height + 1, ...


@dataclass(frozen=True)
class SyncLimits:
    blocks_max: int = 64  # per response
    bytes_max: int = 8 * 1024 * 1024  # per response, below the 16 MiB frame limit
    request_timeout_ms: int = 5_000
    failures_max: int = 8  # requests in a row without progress before giving up
    retry_ms: int = 200  # pause when no peer is connected

    def validate(self) -> None:
        """Raises BadNetworkConfig for a limit below 1."""
        for name in ("blocks_max", "bytes_max", "request_timeout_ms", "failures_max", "retry_ms"):
            if getattr(self, name) < 1:
                raise BadNetworkConfig(f"{name} must be at least 1")


class SyncTransport(Protocol):
    """What sync needs from the network (PeerNetwork fits)."""

    def send_kind(self, peer: str, kind: str, payload: bytes) -> bool: ...

    def connected_peers(self) -> list[str]: ...

    def add_handler(self, kind: str, handler: Callable[[str, bytes], None]) -> None: ...


class SyncServer:
    """Answers SyncRequests from `read_block(height)`: the encoded Block at `height`
    (with its certificate), or None past the tip."""

    def __init__(
        self,
        transport: SyncTransport,
        read_block: Callable[[int], bytes | None],
        limits: SyncLimits | None = None,
    ) -> None:
        """Raises BadNetworkConfig for bad limits."""
        self.limits = limits if limits is not None else SyncLimits()
        self.limits.validate()
        self._transport = transport
        self._read_block = read_block
        self.served = 0  # blocks sent
        self.refused = 0  # malformed requests
        transport.add_handler(KIND_SYNC_REQUEST, self.handle)

    def answer(self, request: SyncRequest) -> SyncResponse:
        """The response to `request`, within the limits (pure apart from read_block)."""
        blocks: list[bytes] = []
        size = 0
        last = min(request.to_height, request.from_height + self.limits.blocks_max - 1)
        for height in range(request.from_height, last + 1):
            raw = self._read_block(height)
            if raw is None:
                break
            if blocks and size + len(raw) > self.limits.bytes_max:
                break
            blocks.append(raw)
            size += len(raw)
        return SyncResponse(request.request_id, blocks)

    def handle(self, sender: str, payload: bytes) -> None:
        try:
            request = decode(payload, SyncRequest)
        except CodecError as exc:
            self.refused += 1
            log.warning("malformed sync request from %s: %s", sender, exc)
            return
        if request.from_height < 0 or request.to_height < request.from_height:
            self.refused += 1
            log.warning(
                "sync request from %s with bad range %d..%d", sender, request.from_height, request.to_height
            )
            return
        response = self.answer(request)
        try:
            self._transport.send_kind(sender, KIND_SYNC_RESPONSE, encode(response))
        except FrameTooLarge as exc:  # a single block above the frame limit: nothing we can send
            log.error("cannot serve blocks from %d to %s: %s", request.from_height, sender, exc)
            return
        self.served += len(response.blocks)


VerifyBlock = Callable[[Block], bool | Awaitable[bool]]
ApplyBlock = Callable[[Block], Awaitable[None] | None]


class BlockSyncer:
    """Fetches, verifies and applies missing blocks in height order from connected peers."""

    def __init__(
        self,
        transport: SyncTransport,
        verify: VerifyBlock,
        apply: ApplyBlock,
        limits: SyncLimits | None = None,
    ) -> None:
        """`verify(block)` says whether `block` may follow the last applied block (it
        may be async); `apply(block)` commits it (may be async) and is called only with
        verified blocks, in height order, one at a time. Raises BadNetworkConfig."""
        self.limits = limits if limits is not None else SyncLimits()
        self.limits.validate()
        self._transport = transport
        self._verify = verify
        self._apply = apply
        self._next_id = 1
        self._turn = 0
        self._pending: dict[int, tuple[str, asyncio.Future[SyncResponse]]] = {}
        self.rejected: dict[str, int] = {}  # peers caught serving bad blocks, with counts
        transport.add_handler(KIND_SYNC_RESPONSE, self._on_response)

    def _on_response(self, sender: str, payload: bytes) -> None:
        try:
            response = decode(payload, SyncResponse)
        except CodecError as exc:
            log.warning("malformed sync response from %s: %s", sender, exc)
            return
        entry = self._pending.get(response.request_id)
        if entry is None or entry[0] != sender or entry[1].done():
            return  # late, unasked for, or from someone else: ignore
        entry[1].set_result(response)

    async def sync(self, from_height: int, to_height: int, prefer: Sequence[str] = ()) -> int:
        """Fetch, verify and apply blocks `from_height`..`to_height` (inclusive); returns
        the last height applied (`to_height` when complete). `prefer` lists peers to ask
        first (e.g. the one that announced the higher height).

        Raises SyncError after `failures_max` requests in a row without progress, and
        whatever `verify` or `apply` raise.
        """
        next_height = from_height
        failures = 0
        excluded: set[str] = set()
        self._turn = 0
        while next_height <= to_height:
            peer = self._pick_peer(prefer, excluded)
            if peer is None:
                failures += 1
                if failures >= self.limits.failures_max:
                    raise SyncError(f"no peer to sync heights {next_height}..{to_height} from")
                await asyncio.sleep(self.limits.retry_ms / 1000)
                continue
            last = min(to_height, next_height + self.limits.blocks_max - 1)
            response = await self._request(peer, next_height, last)
            applied, bad = 0, False
            if response is not None:
                applied, bad = await self._take(peer, response.blocks, next_height, last)
            next_height += applied
            if bad:
                excluded.add(peer)
                self.rejected[peer] = self.rejected.get(peer, 0) + 1
            if applied:
                failures = 0
            else:
                failures += 1
                self._turn += 1  # ask someone else next
                if failures >= self.limits.failures_max:
                    raise SyncError(
                        f"no progress syncing from height {next_height} after {failures} requests"
                    )
        return next_height - 1

    def _pick_peer(self, prefer: Sequence[str], excluded: set[str]) -> str | None:
        """Preferred peers first, then the rest by name; `_turn` rotates on failures."""
        connected = [p for p in self._transport.connected_peers() if p not in excluded]
        if not connected:
            return None
        first = [p for p in prefer if p in connected]
        ordered = first + [p for p in connected if p not in first]
        return ordered[self._turn % len(ordered)]

    async def _request(self, peer: str, first: int, last: int) -> SyncResponse | None:
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[SyncResponse] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (peer, future)
        try:
            if not self._transport.send_kind(
                peer, KIND_SYNC_REQUEST, encode(SyncRequest(request_id, first, last))
            ):
                return None
            async with asyncio.timeout(self.limits.request_timeout_ms / 1000):
                return await future
        except TimeoutError:
            log.info("sync request %d..%d to %s timed out", first, last, peer)
            return None
        finally:
            del self._pending[request_id]

    async def _take(self, peer: str, blocks: list[bytes], first: int, last: int) -> tuple[int, bool]:
        """Verify and apply a response's blocks; returns (applied, peer misbehaved)."""
        if len(blocks) > last - first + 1:
            log.warning("%s answered sync with %d blocks, more than asked", peer, len(blocks))
            return 0, True
        applied = 0
        for raw in blocks:
            height = first + applied
            try:
                block = decode(raw, Block)
            except CodecError as exc:
                log.warning("%s served an undecodable block at height %d: %s", peer, height, exc)
                return applied, True
            if block.header.height != height:
                log.warning("%s served height %d when %d was asked", peer, block.header.height, height)
                return applied, True
            verdict = self._verify(block)
            ok = await verdict if inspect.isawaitable(verdict) else verdict
            if not ok:
                log.warning("%s served block %d that fails verification", peer, height)
                return applied, True
            done = self._apply(block)
            if inspect.isawaitable(done):
                await done
            applied += 1
        return applied, False
