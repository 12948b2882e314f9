"""The genesis block: height 0, carrying the channel configuration as its only payload."""

from __future__ import annotations

import tempfile
from pathlib import Path

from consortia.crypto import ZERO_HASH, merkle_root
from consortia.execution.genesis import BadGenesisConfig, check_genesis_allowlist, genesis_writes
from consortia.ledger.store import Ledger
from consortia.types import Block, ChannelConfig, CodecError, Header, decode, encode


class GenesisError(Exception):
    code = "bad_genesis"


def build_genesis(config: ChannelConfig, timestamp_ms: int) -> Block:
    """Deterministic: the same config and timestamp give the same block on every machine.

    Raises GenesisError for a config whose initial state cannot be written (e.g. an
    unsorted genesis EVM allowlist or one naming an org that is not a member).
    """
    try:
        writes = genesis_writes(config)
    except BadGenesisConfig as exc:
        raise GenesisError(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="consortia-genesis-") as tmp:
        ledger = Ledger.open(Path(tmp), config.channel)
        try:
            root = ledger.prepare(writes).root
        finally:
            ledger.close()
    payload = [encode(config)]
    header = Header(
        chain_id=config.chain_id,
        channel=config.channel,
        height=0,
        parent_hash=ZERO_HASH,
        timestamp_ms=timestamp_ms,
        proposer="genesis",
        tx_root=merkle_root(payload),
        state_root=root,
        receipts_root=merkle_root([]),
        tx_count=0,
    )
    return Block(header, payload)


def write_genesis(block: Block, path: Path) -> None:
    path.write_bytes(encode(block))


def read_genesis(path: Path) -> Block:
    """Raises GenesisError when the file is missing or is not a genesis block."""
    try:
        block = decode(path.read_bytes(), Block)
        if block.header.height != 0 or len(block.txs) != 1:
            raise GenesisError(f"{path} is not a genesis block")
        check_genesis_allowlist(decode(block.txs[0], ChannelConfig))
    except BadGenesisConfig as exc:
        raise GenesisError(f"{path} is not a usable genesis block: {exc}") from exc
    except OSError as exc:
        raise GenesisError(f"cannot read genesis block {path}: {exc.strerror}") from exc
    except CodecError as exc:
        raise GenesisError(f"{path} is not a genesis block: {exc}") from exc
    return block
