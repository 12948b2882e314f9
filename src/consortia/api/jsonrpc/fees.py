"""eth_feeHistory: well-formed, and all zero, since gas is never charged."""

from __future__ import annotations

from typing import Any

from consortia.api.jsonrpc.codec import INVALID_PARAMS, RpcError, parse_qty, qty

FEE_HISTORY_BLOCKS_MAX = 1024
FEE_PERCENTILES_MAX = 100


def parse_block_count(value: Any) -> int:
    """A hex quantity or, as geth also accepts, a plain integer, in 1..FEE_HISTORY_BLOCKS_MAX."""
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        count = parse_qty(value, "blockCount")
    if not 1 <= count <= FEE_HISTORY_BLOCKS_MAX:
        raise RpcError(INVALID_PARAMS, f"blockCount must be 1..{FEE_HISTORY_BLOCKS_MAX}")
    return count


def parse_percentiles(value: Any) -> list[float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > FEE_PERCENTILES_MAX:
        raise RpcError(INVALID_PARAMS, f"rewardPercentiles: a list of at most {FEE_PERCENTILES_MAX}")
    previous = 0.0
    for p in value:
        if isinstance(p, bool) or not isinstance(p, int | float) or not previous <= p <= 100:
            raise RpcError(INVALID_PARAMS, "rewardPercentiles must rise within 0..100")
        previous = float(p)
    return [float(p) for p in value]


def fee_history(count: int, newest: int, percentiles: list[float] | None) -> dict[str, Any]:
    """Zero fees for the `count` blocks up to `newest` (fewer when the chain is shorter)."""
    count = min(count, newest + 1)
    out: dict[str, Any] = {
        "oldestBlock": qty(newest - count + 1),
        "baseFeePerGas": ["0x0"] * (count + 1),  # one more: the block after `newest`
        "gasUsedRatio": [0.0] * count,
    }
    if percentiles is not None:
        out["reward"] = [["0x0"] * len(percentiles) for _ in range(count)]
    return out
