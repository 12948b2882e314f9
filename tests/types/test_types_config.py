"""ChannelConfig's Ethereum fields: old encodings decode, bounds hold, one chain id reader."""

from __future__ import annotations

import msgspec
import pytest

from consortia.types import ChannelConfig, CodecError, ConsensusConfig, EvmPermit, decode, encode
from consortia.types.config import ETH_CHAIN_ID_MAX
from consortia.types.eth import BadEthChainId, check_eth_chain_id, eth_chain_id, eth_chain_id_of

BASE = ChannelConfig("chain", "main", "ed25519", [], {}, ConsensusConfig())


def test_config_encoded_before_the_ethereum_fields_decodes_as_derived() -> None:
    # An array-like struct: drop the two trailing fields to get an older config's bytes.
    fields = msgspec.msgpack.decode(encode(BASE))
    old = msgspec.msgpack.encode(fields[:-2])
    config = decode(old, ChannelConfig)
    assert config.eth_chain_id == 0 and config.genesis_evm_allowlist == []
    assert eth_chain_id_of(config) == eth_chain_id("chain", "main")


def test_explicit_chain_id_wins_and_round_trips() -> None:
    config = msgspec.structs.replace(
        BASE, eth_chain_id=31337, genesis_evm_allowlist=[EvmPermit(b"\x01" * 20, "org1")]
    )
    again = decode(encode(config), ChannelConfig)
    assert again == config and eth_chain_id_of(again) == 31337
    assert again.hash != BASE.hash  # both fields are part of the config hash


@pytest.mark.parametrize("bad", [-1, ETH_CHAIN_ID_MAX + 1, 2**64 - 1])
def test_decoding_refuses_an_out_of_range_chain_id(bad: int) -> None:
    fields = msgspec.msgpack.decode(encode(BASE))
    fields[-2] = bad
    with pytest.raises(CodecError):
        decode(msgspec.msgpack.encode(fields), ChannelConfig)


@pytest.mark.parametrize("address", [b"", b"\x01" * 19, b"\x01" * 21])
def test_decoding_refuses_an_allowlist_address_of_the_wrong_size(address: bytes) -> None:
    fields = msgspec.msgpack.decode(encode(BASE))
    fields[-1] = [[address, "org1"]]
    with pytest.raises(CodecError):
        decode(msgspec.msgpack.encode(fields), ChannelConfig)


def test_check_eth_chain_id_bounds() -> None:
    assert check_eth_chain_id(1) == 1
    assert check_eth_chain_id(2**53 - 1) == 2**53 - 1
    for bad in (0, -5, 2**53, True):
        with pytest.raises(BadEthChainId) as info:
            check_eth_chain_id(bad)
        assert info.value.code == "bad_eth_chain_id"
