"""The EVM account allowlist: only accounts bound to a member org may send transactions.

As in Besu's account permissioning, the list lives in state; here it changes only through
config proposals that meet the channel's "admin" policy (see `execution.system.config`):

    {"op": "evm_permit", "address": <20 bytes or "0x" + 40 hex>, "org": <member org>}
    {"op": "evm_revoke", "address": <20 bytes or "0x" + 40 hex>}

The executor checks the sender against the list as of its position in the block, before
anything runs; admission checks it against the committed state.
"""

from __future__ import annotations

from typing import Any

from consortia.execution.contract import ContractError
from consortia.execution.evm.layout import ADDRESS_BYTES, allow_key
from consortia.ledger.interface import StateReader
from consortia.types import ChannelConfig, CodecError, decode_value, encode_value

PERMIT_OP = "evm_permit"
REVOKE_OP = "evm_revoke"
PERMISSION_OPS = (PERMIT_OP, REVOKE_OP)


def permitted_org(state: StateReader, address: bytes) -> str | None:
    """The org an account is bound to, or None when it may not send transactions."""
    if len(address) != ADDRESS_BYTES:
        return None
    raw = state.get(allow_key(address))
    if raw is None:
        return None
    try:
        record = decode_value(raw)
    except CodecError:
        return None
    org = record.get("org") if isinstance(record, dict) else None
    return org if isinstance(org, str) else None


def parse_address(value: Any) -> bytes:
    """20 raw bytes, or "0x" followed by 40 hex digits. Raises ContractError."""
    if isinstance(value, bytes) and len(value) == ADDRESS_BYTES:
        return value
    if isinstance(value, str) and len(value) == 2 + 2 * ADDRESS_BYTES and value[:2].lower() == "0x":
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise ContractError('an address must be 20 bytes or "0x" followed by 40 hex digits')


def check_permission_update(config: ChannelConfig, update: dict[str, Any]) -> tuple[bytes, str | None]:
    """The (address, org) an allowlist update sets; org None revokes. Raises ContractError."""
    op = update["op"]
    allowed = {"op", "address", "org"} if op == PERMIT_OP else {"op", "address"}
    extra = sorted(k for k in update if k not in allowed)
    if extra:
        raise ContractError(f"unknown fields for {op}: {', '.join(extra)}")
    missing = sorted(k for k in allowed if k not in update)
    if missing:
        raise ContractError(f"missing fields for {op}: {', '.join(missing)}")
    address = parse_address(update["address"])
    if op == REVOKE_OP:
        return address, None
    org = update["org"]
    if not isinstance(org, str) or config.org(org) is None:
        raise ContractError(f"{op} names unknown org {org!r}")
    return address, org


def permission_record(org: str) -> bytes:
    return encode_value({"org": org})
