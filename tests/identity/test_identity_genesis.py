"""Genesis configuration from a crypto directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortia.identity import (
    MSP,
    BadArgument,
    BadOrgName,
    IdentityNotFound,
    WrongSuite,
    channel_config_from_crypto,
    load_crl_der,
)
from consortia.identity.certs import cert_der, load_certificate
from consortia.types import ChannelConfig, Policy, decode_canonical, encode


def test_orgs_carry_ca_tls_ca_and_crl(ed_dir: Path) -> None:
    config = channel_config_from_crypto(ed_dir, ["org3", "org1"], "chain-7", "payments")
    assert [o.name for o in config.orgs] == ["org3", "org1"]
    org3 = config.orgs[0]
    base = ed_dir / "orgs" / "org3"
    assert org3.ca_certs == [cert_der(load_certificate((base / "ca" / "ca.crt").read_bytes()))]
    assert org3.tls_ca_certs == [cert_der(load_certificate((base / "tlsca" / "tlsca.crt").read_bytes()))]
    assert org3.crls == [load_crl_der(base / "crl.pem")]
    assert (config.chain_id, config.channel, config.suite) == ("chain-7", "payments", "ed25519")


def test_default_policies_for_solo_and_others(ed_dir: Path) -> None:
    solo = channel_config_from_crypto(ed_dir, ["org1", "org2"], "c", "ch")
    assert solo.policies == {
        "block_signing": Policy(k=1, role="node"),
        "lifecycle": Policy(k=0, role="admin"),
        "admin": Policy(k=0, role="admin"),
    }
    assert solo.consensus.engine == "solo"
    raft = channel_config_from_crypto(
        ed_dir, ["org1", "org2"], "c", "ch", engine="raft", params={"tick_ms": 100}
    )
    assert raft.policies["block_signing"] == Policy(k=0, role="node")
    assert raft.consensus.params == {"tick_ms": 100}


def test_config_round_trips_canonically_and_builds_an_msp(config: ChannelConfig) -> None:
    data = encode(config)
    assert decode_canonical(data, ChannelConfig) == config
    assert len(MSP(config).tls_trust_roots()) == 3


def test_suite_mismatch_and_bad_input(ed_dir: Path) -> None:
    with pytest.raises(WrongSuite):
        channel_config_from_crypto(ed_dir, ["org1"], "c", "ch", suite="p256")
    with pytest.raises(BadArgument):
        channel_config_from_crypto(ed_dir, ["org1"], "c", "ch", suite="sm2")
    with pytest.raises(BadArgument):
        channel_config_from_crypto(ed_dir, ["org1"], "", "ch")
    with pytest.raises(IdentityNotFound):
        channel_config_from_crypto(ed_dir, ["org1", "org9"], "c", "ch")
    with pytest.raises(BadOrgName):
        channel_config_from_crypto(ed_dir, ["org1", "org1"], "c", "ch")
