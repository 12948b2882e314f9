"""The one interface every consensus engine implements: `step(event) -> list[Action]`.

Engines are sans-IO state machines. They never read the clock (time arrives in `Tick`),
never touch sockets or disks (they emit `Send`, `Broadcast`, `Persist`), and never run
transactions (they ask the driver to `BuildProposal` or `ExecuteProposal` and hear back).
Two drivers exist: the node runtime and the deterministic simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from consortia.crypto import PrivateKey
from consortia.types import Block, BlockSignature, CommitCertificate, commit_signing_bytes


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
    """Durably store the engine's own state (term, vote, log) before any later action runs."""

    key: str
    value: bytes


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
