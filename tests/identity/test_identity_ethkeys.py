"""Ethereum keys of client identities, and the genesis allowlist and chain id built from them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from consortia.identity import (
    BadArgument,
    BadKey,
    IdentityNotFound,
    add_identity,
    channel_config_from_crypto,
    generate_consortium,
    genesis_evm_allowlist,
)
from consortia.identity.ethkeys import ETH_ADDRESS, ETH_KEY, load_eth_key, org_eth_accounts, read_eth_address
from consortia.types import EvmPermit
from consortia.types.config import ETH_CHAIN_ID_MAX
from consortia.types.eth import checksum_address, eth_address, eth_chain_id, eth_chain_id_of

ORGS = ["org1", "org2", "org3"]


def _user(crypto: Path, org: str, name: str) -> Path:
    return crypto / "orgs" / org / "users" / name


def test_every_client_gets_a_private_ethereum_key_and_its_address(crypto_dir: Path) -> None:
    for org in ORGS:
        for name in (f"client0@{org}", f"client1@{org}"):
            directory = _user(crypto_dir, org, name)
            key_file = directory / ETH_KEY
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file
            text = key_file.read_text()
            assert text.startswith("0x") and len(text.strip()) == 66
            key = load_eth_key(directory)
            address = read_eth_address(directory)
            assert eth_address(key) == address
            assert (directory / ETH_ADDRESS).read_text().strip() == checksum_address(address)
        admin = _user(crypto_dir, org, f"admin@{org}")
        assert not (admin / ETH_KEY).exists() and not (admin / ETH_ADDRESS).exists()
    addresses = {read_eth_address(_user(crypto_dir, o, f"client{i}@{o}")) for o in ORGS for i in (0, 1)}
    assert len(addresses) == 6  # fresh keys, no two alike


def test_checksum_address_matches_eip55_vectors() -> None:
    for mixed in (
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ):
        assert checksum_address(bytes.fromhex(mixed[2:])) == mixed
    with pytest.raises(ValueError):
        checksum_address(b"\x01" * 19)


def test_genesis_config_permits_every_client_account_sorted_with_its_org(crypto_dir: Path) -> None:
    config = channel_config_from_crypto(
        crypto_dir, ["org3", "org1"], "chain", "main", suite=_suite(crypto_dir)
    )
    expected = sorted(
        (read_eth_address(_user(crypto_dir, org, f"client{i}@{org}")), org)
        for org in ("org1", "org3")
        for i in (0, 1)
    )
    assert [(p.address, p.org) for p in config.genesis_evm_allowlist] == expected
    assert all(isinstance(p, EvmPermit) for p in config.genesis_evm_allowlist)
    # Orgs outside the channel contribute nothing.
    assert not {p.org for p in config.genesis_evm_allowlist} & {"org2"}


def test_genesis_chain_id_is_explicit_derived_by_default_and_bounded(crypto_dir: Path) -> None:
    suite = _suite(crypto_dir)
    derived = channel_config_from_crypto(crypto_dir, ORGS, "chain", "main", suite=suite)
    assert derived.eth_chain_id == eth_chain_id("chain", "main") == eth_chain_id_of(derived)
    chosen = channel_config_from_crypto(crypto_dir, ORGS, "chain", "main", suite=suite, eth_chain_id=1337)
    assert chosen.eth_chain_id == 1337 == eth_chain_id_of(chosen)
    top = channel_config_from_crypto(crypto_dir, ORGS, "c", "m", suite=suite, eth_chain_id=ETH_CHAIN_ID_MAX)
    assert eth_chain_id_of(top) == 2**53 - 1
    for bad in (0, -1, 2**53, 2**64):
        with pytest.raises(BadArgument, match=r"1\.\.9007199254740991"):
            channel_config_from_crypto(crypto_dir, ORGS, "chain", "main", suite=suite, eth_chain_id=bad)


def test_malformed_or_shared_address_files_are_refused(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1", "org2"])
    victim = _user(tmp_path, "org1", "client0@org1")
    good = (victim / ETH_ADDRESS).read_text()
    (victim / ETH_ADDRESS).write_text("0x1234\n")
    with pytest.raises(BadKey, match="40 hex digits"):
        channel_config_from_crypto(tmp_path, ["org1"], "c", "m")
    # A mixed-case address must carry a valid EIP-55 checksum (one letter's case is off).
    (victim / ETH_ADDRESS).write_text("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
    with pytest.raises(BadKey, match="EIP-55"):
        read_eth_address(victim)
    (victim / ETH_ADDRESS).write_text(good.lower())  # all lower case carries no checksum: fine
    assert read_eth_address(victim) == bytes.fromhex(good.strip()[2:])
    # Two identities claiming one account cannot both be bound to it.
    (_user(tmp_path, "org2", "client0@org2") / ETH_ADDRESS).write_text(good)
    with pytest.raises(BadArgument, match="another identity"):
        genesis_evm_allowlist(tmp_path, ["org1", "org2"])
    with pytest.raises(IdentityNotFound):
        org_eth_accounts(tmp_path, "org9")


def test_key_file_must_match_its_address_and_be_a_valid_key(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1"], clients=2)
    one, two = (_user(tmp_path, "org1", f"client{i}@org1") for i in (0, 1))
    (one / ETH_ADDRESS).write_text((two / ETH_ADDRESS).read_text())
    with pytest.raises(BadKey, match="does not match"):
        load_eth_key(one)
    (two / ETH_KEY).write_text("0x" + "00" * 32)
    with pytest.raises(BadKey, match="not a valid secp256k1"):
        load_eth_key(two)
    (two / ETH_KEY).write_text("secret")
    with pytest.raises(BadKey, match="64 hex digits"):
        load_eth_key(two)


def test_added_client_gets_a_key_admins_do_not(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1"], clients=0)
    assert org_eth_accounts(tmp_path, "org1") == []
    client = add_identity(tmp_path, "org1", "app@org1")
    admin = add_identity(tmp_path, "org1", "ops@org1", role="admin")
    assert stat.S_IMODE((client / ETH_KEY).stat().st_mode) == 0o600
    assert not (admin / ETH_KEY).exists()
    assert org_eth_accounts(tmp_path, "org1") == [("app@org1", read_eth_address(client))]


def _suite(crypto: Path) -> str:
    from consortia.crypto import public_key_of
    from consortia.identity.certs import load_certificate

    cert = load_certificate((crypto / "orgs" / "org1" / "ca" / "ca.crt").read_bytes())
    return public_key_of(cert.public_key())[0]
