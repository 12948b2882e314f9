"""Pure transaction pool: admission limits, dedup, FIFO order, Ethereum nonce order."""

from consortia.mempool.pool import (
    AccountQueueFull,
    DuplicateTransaction,
    Mempool,
    MempoolError,
    MempoolFull,
    NonceGapTooLarge,
    NonceTaken,
    NonceTooLow,
    PooledTx,
    PoolLimits,
    SenderLimit,
)

__all__ = [
    "AccountQueueFull",
    "DuplicateTransaction",
    "Mempool",
    "MempoolError",
    "MempoolFull",
    "NonceGapTooLarge",
    "NonceTaken",
    "NonceTooLow",
    "PoolLimits",
    "PooledTx",
    "SenderLimit",
]
