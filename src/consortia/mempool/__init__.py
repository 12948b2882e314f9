"""Pure transaction pool: admission limits, dedup, FIFO order."""

from consortia.mempool.pool import (
    DuplicateTransaction,
    Mempool,
    MempoolError,
    MempoolFull,
    PooledTx,
    PoolLimits,
    SenderLimit,
)

__all__ = [
    "DuplicateTransaction",
    "Mempool",
    "MempoolError",
    "MempoolFull",
    "PoolLimits",
    "PooledTx",
    "SenderLimit",
]
