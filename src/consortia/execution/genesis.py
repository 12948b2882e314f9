"""The state a channel starts from, and reading its config back."""

from __future__ import annotations

from consortia.execution.errors import StateError
from consortia.execution.keys import CONFIG_KEY
from consortia.ledger.interface import StateReader, Write
from consortia.types import ChannelConfig, CodecError, decode_canonical, encode


def genesis_writes(config: ChannelConfig) -> list[Write]:
    """The writes of the genesis block (tx index 0): the channel config at CONFIG_KEY."""
    return [Write(CONFIG_KEY, encode(config), 0)]


def config_from_state(state: StateReader) -> ChannelConfig:
    """The channel config stored in `state`. Raises StateError if absent or malformed."""
    raw = state.get(CONFIG_KEY)
    if raw is None:
        raise StateError("state holds no channel config")
    try:
        return decode_canonical(raw, ChannelConfig)
    except CodecError as exc:
        raise StateError(f"stored channel config is malformed: {exc}") from exc
