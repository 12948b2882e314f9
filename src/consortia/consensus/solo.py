"""Solo: one orderer cuts and signs every block. For development and single-node channels."""

from __future__ import annotations

from consortia.consensus.interface import (
    Action,
    BlockSigner,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    ProposalBuilt,
    Tick,
)
from consortia.types import BlockLimits, CommitCertificate


class SoloEngine:
    """Cuts a block when the pool holds a full block or the oldest wait exceeds `wait_ms`."""

    name = "solo"

    def __init__(self, node_id: str, signer: BlockSigner, limits: BlockLimits, height: int, head: bytes):
        if limits.txs_max <= 0 or limits.bytes_max <= 0 or limits.wait_ms < 0:
            raise ValueError("block limits must be positive")
        self.node_id = node_id
        self.signer = signer
        self.limits = limits
        self.height = height  # last committed height
        self.head = head
        self._building = False
        self._pending_since_ms: int | None = None

    @classmethod
    def from_setup(cls, setup: EngineSetup) -> SoloEngine:
        return cls(setup.node_id, setup.signer, setup.limits, setup.height, setup.head)

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            return self._on_tick(event)
        if isinstance(event, ProposalBuilt):
            block = event.block
            if block.header.height != self.height + 1 or block.header.parent_hash != self.head:
                self._building = False  # stale build; try again on the next tick
                return []
            cert = CommitCertificate(block.header.height, block.hash, [self.signer.sign_block(block.hash)])
            return [CommitBlock(block, cert)]
        if isinstance(event, Committed):
            if event.height > self.height:
                self.height, self.head = event.height, event.block_hash
            self._building = False
            self._pending_since_ms = None
            return []
        return []

    def _on_tick(self, tick: Tick) -> list[Action]:
        if self._building or tick.pending_txs == 0:
            if tick.pending_txs == 0:
                self._pending_since_ms = None
            return []
        if self._pending_since_ms is None:
            self._pending_since_ms = tick.now_ms
        full = tick.pending_txs >= self.limits.txs_max or tick.pending_bytes >= self.limits.bytes_max
        waited = tick.now_ms - self._pending_since_ms >= self.limits.wait_ms
        if not (full or waited):
            return []
        self._building = True
        return [BuildProposal(self.height + 1, self.head)]

    def status(self) -> dict[str, int | str]:
        return {"engine": self.name, "leader": self.node_id, "height": self.height}
