"""Genesis state: the channel config plus the genesis EVM allowlist, written deterministically."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from consortia.execution.evm.layout import allow_key
from consortia.execution.evm.permissions import permission_record, permitted_org
from consortia.execution.genesis import BadGenesisConfig, config_from_state, genesis_writes
from consortia.execution.keys import CONFIG_KEY
from consortia.node.genesis import GenesisError, build_genesis, read_genesis
from consortia.node.runtime import open_ledger_with_genesis
from consortia.types import Block, ChannelConfig, ConsensusConfig, EvmPermit, OrgConfig, encode

A, B, C = (bytes([n]) * 20 for n in (0x0A, 0x0B, 0x0C))
CONFIG = ChannelConfig(
    "chain",
    "main",
    "ed25519",
    [OrgConfig("org1", [], []), OrgConfig("org2", [], [])],
    {},
    ConsensusConfig(),
    eth_chain_id=4242,
    genesis_evm_allowlist=[EvmPermit(A, "org2"), EvmPermit(B, "org1"), EvmPermit(C, "org2")],
)


def test_genesis_writes_put_every_permit_on_the_allowlist_in_address_order() -> None:
    writes = genesis_writes(CONFIG)
    assert [w.key for w in writes] == [CONFIG_KEY, allow_key(A), allow_key(B), allow_key(C)]
    assert [w.value for w in writes[1:]] == [permission_record(o) for o in ("org2", "org1", "org2")]
    assert {w.tx_index for w in writes} == {0}


def test_a_ledger_started_from_the_genesis_block_holds_the_allowlist(tmp_path: Path) -> None:
    block = build_genesis(CONFIG, 1_000)
    assert build_genesis(CONFIG, 1_000).hash == block.hash  # deterministic
    ledger = open_ledger_with_genesis(tmp_path, block)
    try:
        state = ledger.state
        assert [permitted_org(state, a) for a in (A, B, C)] == ["org2", "org1", "org2"]
        assert permitted_org(state, b"\x0d" * 20) is None
        assert config_from_state(state) == CONFIG
        assert ledger.state_root == block.header.state_root
    finally:
        ledger.close()


def test_the_allowlist_changes_the_genesis_state_root() -> None:
    without = msgspec.structs.replace(CONFIG, genesis_evm_allowlist=[])
    assert build_genesis(without, 1_000).header.state_root != build_genesis(CONFIG, 1_000).header.state_root


@pytest.mark.parametrize(
    ("allowlist", "message"),
    [
        ([EvmPermit(B, "org1"), EvmPermit(A, "org2")], "sorted"),
        ([EvmPermit(A, "org1"), EvmPermit(A, "org2")], "repeats"),
        ([EvmPermit(A, "org9")], "unknown org 'org9'"),
    ],
)
def test_a_bad_genesis_allowlist_is_refused_everywhere(
    allowlist: list[EvmPermit], message: str, tmp_path: Path
) -> None:
    bad = msgspec.structs.replace(CONFIG, genesis_evm_allowlist=allowlist)
    with pytest.raises(BadGenesisConfig, match=message):
        genesis_writes(bad)
    with pytest.raises(GenesisError, match=message):
        build_genesis(bad, 1_000)
    # A hand-made genesis file carrying it is refused when a node reads it.
    good = build_genesis(CONFIG, 1_000)
    path = tmp_path / "genesis.block"
    path.write_bytes(encode(Block(good.header, [encode(bad)])))
    with pytest.raises(GenesisError, match=message):
        read_genesis(path)
