"""Block store, state store, Merkle roots and proofs of one channel."""

from consortia.ledger.blockstore import BlockStore
from consortia.ledger.errors import (
    CorruptBlock,
    IncompatibleFormat,
    InvalidBlock,
    InvalidWrite,
    LedgerCorrupt,
    LedgerError,
    NotFound,
    StalePrepared,
    StateRootMismatch,
    WrongChannel,
    WrongHeight,
    WrongParent,
)
from consortia.ledger.interface import StateReader, Write
from consortia.ledger.proofs import StateProof, TxProof, verify_state_proof, verify_tx_proof
from consortia.ledger.smt import SmtUpdate, SparseMerkleTree
from consortia.ledger.store import (
    BLOCK_WRITE_INDEX,
    STATE_KEY_BYTES_MAX,
    BodyDigests,
    CommittedState,
    IndexUsage,
    KeyVersion,
    Ledger,
    PreparedState,
)

__all__ = [
    "BLOCK_WRITE_INDEX",
    "STATE_KEY_BYTES_MAX",
    "BlockStore",
    "BodyDigests",
    "CommittedState",
    "CorruptBlock",
    "IncompatibleFormat",
    "InvalidBlock",
    "IndexUsage",
    "InvalidWrite",
    "KeyVersion",
    "Ledger",
    "LedgerCorrupt",
    "LedgerError",
    "NotFound",
    "PreparedState",
    "SmtUpdate",
    "SparseMerkleTree",
    "StalePrepared",
    "StateProof",
    "StateReader",
    "StateRootMismatch",
    "TxProof",
    "WrongChannel",
    "WrongHeight",
    "WrongParent",
    "Write",
    "verify_state_proof",
    "verify_tx_proof",
]
