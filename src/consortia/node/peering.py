"""Wires the node to its peers: consensus messages, transaction gossip, heights, block sync.

Every validator forwards the transactions it admitted to the others (so whichever node
leads can order them), announces its committed height once a second, and fetches certified
blocks from peers when it has fallen behind (after a restart, a partition, or as a new node).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

from consortia.identity.blockcert import VerificationError, verify_certificate
from consortia.network import BlockSyncer, NetworkError, PeerNetwork, channel_tls_roots, make_tls_contexts
from consortia.node.runtime import Node
from consortia.types import Block, CodecError, decode, encode

log = logging.getLogger("consortia.node.peering")

KIND_TXS = "txs"
KIND_HEIGHT = "height"
HEIGHT_INTERVAL_S = 1.0
GOSSIP_TXS_MAX = 2000  # per frame
_U64 = struct.Struct(">q")


class NodeCertSigner:
    """The node's identity certificate and key, as the network's HELLO needs them."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def cert_der(self) -> bytes:
        return self._node.signer.cert_der

    def sign(self, message: bytes) -> bytes:
        return self._node.signer.key.sign(message)


class Peering:
    def __init__(self, node: Node, host: str, port: int, tls_cert: Path, tls_key: Path) -> None:
        self.node = node
        tls = make_tls_contexts(tls_cert, tls_key, channel_tls_roots(node.config))
        self.net = PeerNetwork(
            node.name, node.config, tls, node.msp, NodeCertSigner(node), node.deliver, host=host, port=port
        )
        self.net.add_handler(KIND_TXS, self._on_txs)
        self.net.add_handler(KIND_HEIGHT, self._on_height)
        self.net.serve_sync(node.ledger.block_bytes)
        self.syncer = BlockSyncer(self.net, self._verify_synced, node.apply_synced)
        self.peer_heights: dict[str, int] = {}
        self._gossip: list[bytes] = []
        self._flush_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self._admitting: set[asyncio.Future[None]] = set()
        self._inbound: list[bytes] | None = None  # gossip waiting for its admitting task

    async def start(self) -> None:
        await self.net.start()
        self.node.transport = self.net
        self.node.on_admitted = self._queue_gossip
        self.node.on_config_changed = lambda config: self.net.update_config(config, self.node.msp)
        self._tasks = [asyncio.create_task(self._heights(), name="peer-heights")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.net.close()

    # ---- transaction gossip -------------------------------------------------------------
    def _queue_gossip(self, raws: list[bytes]) -> None:
        self._gossip.extend(raws)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_gossip)

    def _flush_gossip(self) -> None:
        self._flush_scheduled = False
        batch, self._gossip = self._gossip, []
        for i in range(0, len(batch), GOSSIP_TXS_MAX):
            try:
                # Bulk: consensus messages never wait behind (or get dropped for) gossip.
                self.net.broadcast_kind(KIND_TXS, encode(batch[i : i + GOSSIP_TXS_MAX]), bulk=True)
            except NetworkError as exc:
                log.warning("tx gossip dropped: %s", exc)

    def _on_txs(self, sender: str, payload: bytes) -> None:
        try:
            raws = decode(payload, list[bytes])[:GOSSIP_TXS_MAX]
        except CodecError:
            log.warning("malformed tx gossip from %s", sender)
            return
        # Frames that arrive before the admitting task starts (the same loop turn, usually
        # one from each peer) join its batch, up to a frame's worth.
        inbound = self._inbound
        if inbound is None or len(inbound) + len(raws) > GOSSIP_TXS_MAX:
            inbound = self._inbound = []
            task = asyncio.ensure_future(self._admit_forwarded(inbound))
            self._admitting.add(task)
            task.add_done_callback(self._admitting.discard)
        inbound.extend(raws)

    async def _admit_forwarded(self, raws: list[bytes]) -> None:
        if self._inbound is raws:
            self._inbound = None  # later frames start the next batch
        # Refusals (AdmissionError) are normal: every node forwards what it admitted, so
        # duplicates abound. Anything raised is a bug.
        try:
            await self.node.submit_many(raws, forwarded=True)
        except Exception:
            log.exception("forwarded transactions failed admission unexpectedly")

    # ---- heights and block sync ---------------------------------------------------------
    def _on_height(self, sender: str, payload: bytes) -> None:
        if len(payload) == _U64.size:
            self.peer_heights[sender] = _U64.unpack(payload)[0]

    async def _heights(self) -> None:
        stalled_at: int | None = None
        while True:
            height = self.node.ledger.height
            self.net.broadcast_kind(KIND_HEIGHT, _U64.pack(height))
            best = max(self.peer_heights.values(), default=-1)
            if best > height:
                if stalled_at == height:  # no progress for a whole interval: fetch what we lack
                    await self._sync(height, best)
                stalled_at = height
            else:
                stalled_at = None
            await asyncio.sleep(HEIGHT_INTERVAL_S)

    async def _sync(self, height: int, best: int) -> None:
        ahead = sorted(p for p, h in self.peer_heights.items() if h > height)
        try:
            last = await self.syncer.sync(height + 1, best, prefer=ahead)
            log.info("block sync: %d -> %d", height, last)
        except NetworkError as exc:
            log.warning("block sync from %s failed: %s", ahead, exc)

    def _verify_synced(self, block: Block) -> bool:
        head = self.node.ledger
        if block.header.height != head.height + 1 or block.header.parent_hash != head.head_hash:
            return False
        try:
            verify_certificate(self.node.config, block.header, block.certificate)
        except VerificationError as exc:
            log.warning("synced block %d refused: %s", block.header.height, exc)
            return False
        return True
