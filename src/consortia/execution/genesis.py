"""The state a channel starts from, and reading its config back."""

from __future__ import annotations

from consortia.execution.errors import ExecutionError, StateError
from consortia.execution.evm.layout import allow_key
from consortia.execution.evm.permissions import permission_record
from consortia.execution.keys import CONFIG_KEY
from consortia.ledger.interface import StateReader, Write
from consortia.types import ChannelConfig, CodecError, decode_canonical, encode


class BadGenesisConfig(ExecutionError):
    """A genesis config whose initial state cannot be written (e.g. a bad allowlist)."""

    code = "bad_genesis"


def check_genesis_allowlist(config: ChannelConfig) -> None:
    """Raise BadGenesisConfig unless the genesis EVM allowlist is sorted by address, has no
    address twice and binds every account to a member org."""
    previous = b""
    for permit in config.genesis_evm_allowlist:
        if permit.address <= previous:
            raise BadGenesisConfig(
                "genesis EVM allowlist must be sorted by address without repeats"
                f" (at 0x{permit.address.hex()})"
            )
        if config.org(permit.org) is None:
            raise BadGenesisConfig(
                f"genesis EVM allowlist binds 0x{permit.address.hex()} to unknown org {permit.org!r}"
            )
        previous = permit.address


def genesis_writes(config: ChannelConfig) -> list[Write]:
    """The writes of the genesis block (tx index 0): the channel config at CONFIG_KEY and
    one allowlist record per account of the genesis EVM allowlist, in address order.

    Raises BadGenesisConfig for an allowlist that is unsorted, repeats an address or names
    an org that is not a member.
    """
    check_genesis_allowlist(config)
    writes = [Write(CONFIG_KEY, encode(config), 0)]
    writes.extend(
        Write(allow_key(permit.address), permission_record(permit.org), 0)
        for permit in config.genesis_evm_allowlist
    )
    return writes


def config_from_state(state: StateReader) -> ChannelConfig:
    """The channel config stored in `state`. Raises StateError if absent or malformed."""
    raw = state.get(CONFIG_KEY)
    if raw is None:
        raise StateError("state holds no channel config")
    try:
        return decode_canonical(raw, ChannelConfig)
    except CodecError as exc:
        raise StateError(f"stored channel config is malformed: {exc}") from exc
