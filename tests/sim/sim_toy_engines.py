"""Two small engines the simulator tests drive.

`PrimaryBackup`: a fixed primary (the first peer) builds, collects a majority of block
signatures, then tells everyone to commit. It never changes leader, so it is safe under any
crash or partition and live once the network heals: a good multi-node workload for the
simulator before the real engines exist.

`SelfCommit`: every node cuts and commits its own blocks with only its own signature: the
deliberately broken engine that the agreement checker must catch.
"""

from __future__ import annotations

import msgspec

from consortia.consensus.interface import (
    Action,
    Broadcast,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    ExecuteProposal,
    PeerMessage,
    Persist,
    ProposalBuilt,
    ProposalExecuted,
    Send,
    Tick,
)
from consortia.sim import ENGINES, EngineSpec
from consortia.types import Block, BlockSignature, CommitCertificate, commit_signing_bytes

RETRY_MS = 200


class Propose(msgspec.Struct, array_like=True, frozen=True, tag="pp"):
    block: Block


class Ack(msgspec.Struct, array_like=True, frozen=True, tag="ak"):
    height: int
    block_hash: bytes
    signature: bytes


class Decide(msgspec.Struct, array_like=True, frozen=True, tag="dc"):
    block: Block
    certificate: CommitCertificate


class Stray(msgspec.Struct, array_like=True, frozen=True, tag="st"):
    """Sent by `Unlisted` but missing from MESSAGE_TYPES: no peer can decode it."""

    n: int


MESSAGE_TYPES = (Propose, Ack, Decide)


class PrimaryBackup:
    name = "toy"

    def __init__(self, setup: EngineSetup):
        self.s = setup
        self.primary = setup.peers[0].name
        self.height = setup.height
        self.head = setup.head
        self.block: Block | None = None  # the primary's block in flight
        self.sigs: dict[str, bytes] = {}
        self.sent_ms = 0
        self.building = False
        self.now = 0

    @classmethod
    def from_setup(cls, setup: EngineSetup) -> PrimaryBackup:
        return cls(setup)

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            self.now = event.now_ms
            if self.s.node_id != self.primary:
                return []
            if self.block is not None and self.now - self.sent_ms >= RETRY_MS:
                self.sent_ms = self.now
                return [Broadcast(Propose(self.block))]
            if self.block is None and not self.building and event.pending_txs:
                self.building = True
                return [BuildProposal(self.height + 1, self.head)]
            return []
        if isinstance(event, ProposalBuilt):
            self.building = False
            b = event.block
            if b.header.height != self.height + 1:
                return []
            self.block, self.sent_ms = b, self.now
            self.sigs = {self.s.node_id: self.s.signer.sign_block(b.hash).signature}
            return [Broadcast(Propose(b)), *self._maybe_decide()]
        if isinstance(event, PeerMessage):
            return self._on_message(event.sender, event.message)
        if isinstance(event, ProposalExecuted):
            if event.valid and self.block is not None and self.block.hash == event.block_hash:
                sig = self.s.signer.sign_block(event.block_hash).signature
                return [Send(self.primary, Ack(self.block.header.height, event.block_hash, sig))]
            return []
        if isinstance(event, Committed):
            if event.height > self.height:
                self.height, self.head = event.height, event.block_hash
            if self.block is not None and self.block.header.height <= self.height:
                self.block = None
            return []
        return []

    def _on_message(self, sender: str, m: object) -> list[Action]:
        peer = self.s.peer(sender)
        if peer is None:
            return []
        if isinstance(m, Propose) and sender == self.primary and m.block.header.height == self.height + 1:
            self.block = m.block
            # Durable before executing, so a crash can strike between the two.
            return [Persist("toy/accepted", m.block.hash), ExecuteProposal(m.block)]
        if isinstance(m, Ack) and self.block is not None and m.block_hash == self.block.hash:
            if peer.verify(commit_signing_bytes(m.block_hash), m.signature):
                self.sigs[sender] = m.signature
                return self._maybe_decide()
            return []
        if isinstance(m, Decide) and sender == self.primary and m.block.header.height > self.height:
            return [CommitBlock(m.block, m.certificate)]
        return []

    def _maybe_decide(self) -> list[Action]:
        if self.block is None or len(self.sigs) < self.s.commit_quorum:
            return []
        by_name = {p.name: p.cert_der for p in self.s.peers}
        sigs = [BlockSignature(by_name[n], s) for n, s in sorted(self.sigs.items())]
        cert = CommitCertificate(self.block.header.height, self.block.hash, sigs)
        # Commit first: a crash right after the durable write loses the Decide broadcast.
        return [CommitBlock(self.block, cert), Broadcast(Decide(self.block, cert))]

    def status(self) -> dict[str, int | str]:
        return {"engine": self.name, "height": self.height}


class SelfCommit:
    """Broken on purpose: commits whatever it built, signed by itself alone."""

    name = "broken"

    def __init__(self, setup: EngineSetup):
        self.s = setup
        self.height = setup.height
        self.head = setup.head
        self.building = False

    @classmethod
    def from_setup(cls, setup: EngineSetup) -> SelfCommit:
        return cls(setup)

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, Tick) and event.pending_txs and not self.building:
            self.building = True
            return [BuildProposal(self.height + 1, self.head)]
        if isinstance(event, ProposalBuilt):
            b = event.block
            cert = CommitCertificate(b.header.height, b.hash, [self.s.signer.sign_block(b.hash)])
            return [CommitBlock(b, cert)]
        if isinstance(event, Committed):
            self.height, self.head = max(self.height, event.height), event.block_hash
            self.building = False
        return []

    def status(self) -> dict[str, int | str]:
        return {"engine": self.name, "height": self.height}


class Tamper(SelfCommit):
    """Broken on purpose: commits a block whose state root it changed after execution."""

    name = "tamper"

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, ProposalBuilt):
            b = event.block
            header = msgspec.structs.replace(b.header, state_root=bytes(32))
            forged = Block(header, b.txs)
            cert = CommitCertificate(header.height, forged.hash, [self.s.signer.sign_block(forged.hash)])
            return [CommitBlock(forged, cert)]
        return super().step(event)


class Stuck(SelfCommit):
    """Never proposes anything: the liveness checker must notice."""

    name = "stuck"

    def step(self, event: Event) -> list[Action]:
        return []


class Crashy(SelfCommit):
    """Raises once it reaches height 3: the driver must report it and carry on."""

    name = "crashy"

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, Tick) and self.height >= 3:
            raise RuntimeError("height 3 reached")
        return super().step(event)


class Unlisted(PrimaryBackup):
    """Broken on purpose: gossips a message type it never declared."""

    name = "unlisted"

    def step(self, event: Event) -> list[Action]:
        out = super().step(event)
        if isinstance(event, Tick) and event.now_ms % 500 < 20:
            out.append(Broadcast(Stray(event.now_ms)))
        return out


TOY = EngineSpec("toy", "cft", __name__, "PrimaryBackup")
# Claims a quorum of one, so its certificates pass and only the agreement checker can object.
BROKEN = EngineSpec("broken", "cft", __name__, "SelfCommit", fixed_quorum=1)
BROKEN_STRICT = EngineSpec("broken-strict", "cft", __name__, "SelfCommit")
# The same primary-backup engine under a byzantine fault model: only to exercise the
# byzantine machinery (it is not byzantine-safe, so its checker results mean nothing).
TOY_BFT = EngineSpec("toy-bft", "bft", __name__, "PrimaryBackup")
TAMPER = EngineSpec("tamper", "cft", __name__, "Tamper", single_node=True)
STUCK = EngineSpec("stuck", "cft", __name__, "Stuck", single_node=True)
CRASHY = EngineSpec("crashy", "cft", __name__, "Crashy", single_node=True)
UNLISTED = EngineSpec("unlisted", "cft", __name__, "Unlisted")


def register() -> None:
    """Make the toy engines known to `SimOptions.from_seed` (tests call this in a fixture)."""
    for spec in (TOY, BROKEN, BROKEN_STRICT, TOY_BFT, TAMPER, STUCK, CRASHY, UNLISTED):
        ENGINES[spec.name] = spec
