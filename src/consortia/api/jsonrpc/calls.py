"""eth_call and eth_estimateGas: the call object, the gas search, and how failures answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consortia.api.jsonrpc.codec import (
    EXECUTION_REVERTED,
    INVALID_PARAMS,
    SERVER_ERROR,
    RpcError,
    data_hex,
    parse_addr,
    parse_data,
    parse_qty,
)
from consortia.execution.evm.outcome import EvmOutcome
from consortia.types import STATUS_OK

# The search stops once the answer is within this fraction of the least gas that works
# (as geth's does): a little extra gas costs nothing here.
ESTIMATE_TOLERANCE_PER_MILLE = 15
CALL_STIPEND = 2_300


@dataclass(frozen=True, slots=True)
class CallArgs:
    sender: bytes
    to: bytes | None
    data: bytes
    value: int
    gas: int | None


def parse_call(call: Any) -> CallArgs:
    """A transaction call object; a missing `from` is the zero address."""
    if not isinstance(call, dict):
        raise RpcError(INVALID_PARAMS, "expected a call object")
    data_in, input_in = call.get("data"), call.get("input")
    if data_in is not None and input_in is not None and data_in != input_in:
        raise RpcError(INVALID_PARAMS, "both data and input given, and they differ")
    return CallArgs(
        sender=parse_addr(call["from"], "from") if call.get("from") else b"\x00" * 20,
        to=parse_addr(call["to"], "to") if call.get("to") else None,
        data=parse_data(input_in if input_in is not None else data_in or "0x", "data"),
        value=parse_qty(call["value"], "value") if call.get("value") else 0,
        gas=parse_qty(call["gas"], "gas", 2**64 - 1) if call.get("gas") else None,
    )


def call_error(outcome: EvmOutcome) -> RpcError:
    """A failed call as geth answers it: code 3 with the revert data, else -32000."""
    if outcome.error.startswith("reverted"):
        message = "execution reverted" + outcome.error[len("reverted") :]
        return RpcError(EXECUTION_REVERTED, message, data_hex(outcome.output))
    return RpcError(SERVER_ERROR, outcome.error)


def estimate_gas(run: Callable[[int], EvmOutcome], cap: int) -> int:
    """The least gas limit (within the tolerance) `run` succeeds with, at most `cap`,
    searched as geth searches. Raises RpcError when even `cap` fails."""
    outcome = run(cap)
    if outcome.status != STATUS_OK:
        if outcome.error == "out of gas":
            raise RpcError(SERVER_ERROR, f"gas required exceeds allowance ({cap})")
        raise call_error(outcome)

    def succeeds(gas: int) -> bool:
        return run(gas).status == STATUS_OK

    low, high = outcome.gas_used - 1, cap  # low fails (it is below the gas used), high works
    # Calls forward at most 63/64 of the gas left (EIP-150) and refunds lower the gas
    # used, so the gas used is often not enough; this first guess usually is.
    guess = min(high, (outcome.gas_used + CALL_STIPEND) * 64 // 63)
    if guess < high:
        if succeeds(guess):
            high = guess
        else:
            low = guess
    while low + 1 < high and (high - low) * 1000 >= high * ESTIMATE_TOLERANCE_PER_MILLE:
        mid = (low + high) // 2
        if low > 0 and mid > 2 * low:
            mid = 2 * low  # most calls need little more than they used
        if succeeds(mid):
            high = mid
        else:
            low = mid
    return high
