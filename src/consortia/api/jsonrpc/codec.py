"""JSON-RPC errors and the Ethereum JSON encoding of quantities, data and addresses."""

from __future__ import annotations

import string
from typing import Any

from consortia.execution.contract import ContractError
from consortia.execution.evm.permissions import parse_address
from consortia.types.eth import HASH_BYTES, UINT256_MAX

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
# EIP-1474: the request exceeds a limit (block range, result count, filters, subscriptions).
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3

# Block tags that all name the head: a committed block is final on this platform.
LATEST_TAGS = ("latest", "pending", "safe", "finalized")
EARLIEST_TAG = "earliest"


class RpcError(Exception):
    """A JSON-RPC error answer: a standard code, a message and optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def qty(value: int) -> str:
    return hex(value)


def data_hex(value: bytes) -> str:
    return "0x" + value.hex()


def word_hex(value: int) -> str:
    """A 256-bit value as 32 bytes of data (eth_getStorageAt)."""
    return data_hex(value.to_bytes(32, "big"))


def parse_data(value: Any, what: str) -> bytes:
    """Raises RpcError (invalid params) unless `value` is "0x" + an even number of hex digits."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise RpcError(INVALID_PARAMS, f"{what} must be a 0x-prefixed hex string")
    digits = value[2:]
    if len(digits) % 2 or any(c not in string.hexdigits for c in digits):
        raise RpcError(INVALID_PARAMS, f"{what} is not valid hex")
    return bytes.fromhex(digits)


def parse_hash(value: Any, what: str) -> bytes:
    raw = parse_data(value, what)
    if len(raw) != HASH_BYTES:
        raise RpcError(INVALID_PARAMS, f"{what} must be 32 bytes")
    return raw


def parse_qty(value: Any, what: str, maximum: int = UINT256_MAX) -> int:
    """A 0x-prefixed hex quantity in [0, maximum]."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or not 2 < len(value) <= 66:
        raise RpcError(INVALID_PARAMS, f"{what} must be a 0x-prefixed hex quantity")
    digits = value[2:]
    if any(c not in string.hexdigits for c in digits):
        raise RpcError(INVALID_PARAMS, f"{what} is not a hex quantity")
    number = int(digits, 16)
    if number > maximum:
        raise RpcError(INVALID_PARAMS, f"{what} exceeds {maximum}")
    return number


def parse_addr(value: Any, what: str) -> bytes:
    try:
        return parse_address(value)
    except ContractError:
        raise RpcError(INVALID_PARAMS, f"{what} must be a 20-byte 0x-prefixed address") from None


def param(params: list[Any], index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index else default


def expect_params(params: list[Any], least: int, most: int, what: str) -> None:
    if not least <= len(params) <= most:
        raise RpcError(INVALID_PARAMS, f"expected {what}")


def parse_block_ref(value: Any, head: int) -> int:
    """The height a block tag or number names; it may lie above the head (not yet committed).

    Accepts the tags, a hex number, and EIP-1898's {"blockNumber": ...}. A {"blockHash": ...}
    reference is resolved by the caller, which has the ledger.
    """
    if value is None or value in LATEST_TAGS:
        return head
    if value == EARLIEST_TAG:
        return 0
    if isinstance(value, dict) and set(value) == {"blockNumber"}:
        return parse_block_ref(value["blockNumber"], head)
    if isinstance(value, str) and value.startswith(("0x", "0X")):
        return parse_qty(value, "block number", 2**63 - 1)
    raise RpcError(INVALID_PARAMS, "block must be a hex number or latest/earliest/pending/safe/finalized")
