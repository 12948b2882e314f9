"""The one interface every consensus engine implements: `step(event) -> list[Action]`.

Engines are sans-IO state machines. They never read the clock (time arrives in `Tick`),
never touch sockets or disks (they emit `Send`, `Broadcast`, `Persist`), and never run
transactions (they ask the driver to `BuildProposal` or `ExecuteProposal` and hear back).
Two drivers exist: the node runtime and the deterministic simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from consortia.crypto import PrivateKey, suite_by_name
from consortia.types import Block, BlockLimits, BlockSignature, CommitCertificate, commit_signing_bytes


# ---- events (driver -> engine) -------------------------------------------------------
@dataclass(frozen=True)
class Tick:
    """Time passes. `pending_*` describe the driver's transaction pool right now."""

    now_ms: int
    pending_txs: int = 0
    pending_bytes: int = 0


@dataclass(frozen=True)
class ProposalBuilt:
    """The driver built and executed the block the engine asked for (not yet committed)."""

    block: Block


@dataclass(frozen=True)
class ProposalExecuted:
    """The driver executed a peer's proposal: `valid` says whether its roots matched."""

    block_hash: bytes
    valid: bool


@dataclass(frozen=True)
class PeerMessage:
    sender: str
    message: object


@dataclass(frozen=True)
class Committed:
    """The driver made a block durable (after a CommitBlock, or from block sync)."""

    height: int
    block_hash: bytes


Event = Tick | ProposalBuilt | ProposalExecuted | PeerMessage | Committed


# ---- actions (engine -> driver) ------------------------------------------------------
@dataclass(frozen=True)
class BuildProposal:
    """Take transactions from the pool, execute them on top of `parent_hash`, report back."""

    height: int
    parent_hash: bytes
    engine_data: bytes = b""


@dataclass(frozen=True)
class ExecuteProposal:
    """Execute a peer's proposed block speculatively and report ProposalExecuted."""

    block: Block


@dataclass(frozen=True)
class CommitBlock:
    """Write the block with its certificate durably; answer with Committed."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True)
class Send:
    to: str
    message: object


@dataclass(frozen=True)
class Broadcast:
    message: object


@dataclass(frozen=True)
class Persist:
    """Durably store the engine's own state (term, vote, log) before any later action runs.

    `value=None` deletes the key. The driver performs actions in order, so a `Send` after a
    `Persist` leaves only once the write is on disk.
    """

    key: str
    value: bytes | None


Action = BuildProposal | ExecuteProposal | CommitBlock | Send | Broadcast | Persist


class Engine(Protocol):
    name: str

    def step(self, event: Event) -> list[Action]: ...

    def status(self) -> dict[str, int | str]:
        """Engine-specific status for operators (leader, view, term)."""
        ...


@dataclass(frozen=True)
class BlockSigner:
    """A node's signing identity for commit certificates."""

    cert_der: bytes
    key: PrivateKey

    def sign_block(self, block_hash: bytes) -> BlockSignature:
        return BlockSignature(self.cert_der, self.key.sign(commit_signing_bytes(block_hash)))


@dataclass(frozen=True)
class Peer:
    """A member of the validator set, as an engine sees it."""

    name: str
    org: str
    cert_der: bytes  # the node's identity certificate: goes into BlockSignature.signer
    suite: str
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool:
        return suite_by_name(self.suite).verify(self.public_key, message, signature)


@dataclass(frozen=True)
class EngineSetup:
    """Everything an engine is constructed from; the same for the node and the simulator.

    `peers` is the whole validator set including this node, sorted by name. `persisted` is
    every key the engine Persist'ed before a restart (empty on first start or after the
    data directory was lost). `seed` feeds the engine's only source of randomness.
    `commit_quorum` is how many distinct validators' signatures a commit certificate needs
    (at least the engine's own quorum; stricter when the channel's block policy asks).
    """

    node_id: str
    peers: tuple[Peer, ...]
    signer: BlockSigner
    limits: BlockLimits
    height: int  # last committed height
    head: bytes  # hash of the last committed block
    seed: int = 0
    persisted: Mapping[str, bytes] = field(default_factory=dict)
    params: Mapping[str, int | str] = field(default_factory=dict)
    commit_quorum: int = 1

    def peer(self, name: str) -> Peer | None:
        for p in self.peers:
            if p.name == name:
                return p
        return None
