"""Consensus engines: sans-IO state machines behind one interface."""

from consortia.consensus.interface import (
    Action,
    BlockSigner,
    Broadcast,
    BuildProposal,
    CommitBlock,
    Committed,
    Engine,
    EngineSetup,
    Event,
    ExecuteProposal,
    Peer,
    PeerMessage,
    Persist,
    ProposalBuilt,
    ProposalExecuted,
    Send,
    Tick,
)
from consortia.consensus.solo import SoloEngine

__all__ = [
    "Action",
    "BlockSigner",
    "Broadcast",
    "BuildProposal",
    "CommitBlock",
    "Committed",
    "Engine",
    "EngineSetup",
    "Event",
    "ExecuteProposal",
    "Peer",
    "PeerMessage",
    "Persist",
    "ProposalBuilt",
    "ProposalExecuted",
    "Send",
    "SoloEngine",
    "Tick",
]
