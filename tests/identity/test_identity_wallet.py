"""Loading signing identities and converting PEM keys for every suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.crypto import SUITES, sha256, suite_by_name
from consortia.identity import (
    BadArgument,
    BadKey,
    BadOrgName,
    IdentityNotFound,
    generate_consortium,
    load_node_identity,
    load_signing_identity,
    private_key_from_pem,
    private_key_to_pem,
)


def test_loaded_identity_signs_with_its_certificate_key(crypto_dir: Path, suite: str) -> None:
    signer = load_signing_identity(crypto_dir, "org1", "client0@org1")
    assert (signer.org, signer.name, signer.key.suite) == ("org1", "client0@org1", suite)
    assert signer.cert_hash == sha256(signer.cert_der)
    assert suite_by_name(suite).verify(signer.key.public_key, b"hello", signer.sign(b"hello"))
    assert signer.key.raw.hex() not in repr(signer)


def test_node_identity_has_tls_files(crypto_dir: Path) -> None:
    node = load_node_identity(crypto_dir, "org2")
    assert node.name == "peer0.org2"
    assert node.tls_cert_path.name == "tls.crt" and node.tls_key_path.name == "tls.key"
    assert load_node_identity(crypto_dir, "org2", "peer1.org2").cert_der != node.cert_der


@settings(max_examples=30, deadline=None)
@given(suite=st.sampled_from(sorted(SUITES)), seed=st.binary(min_size=32, max_size=32))
def test_pem_round_trip_for_every_suite(suite: str, seed: bytes) -> None:
    try:
        key = suite_by_name(suite).private_from_bytes(seed)
    except ValueError:
        return  # not a valid scalar for this curve
    assert private_key_from_pem(private_key_to_pem(key)) == key


def test_traditional_ec_pem_is_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    loaded = private_key_from_pem(pem)
    assert loaded.suite == "secp256k1"
    assert loaded.raw == key.private_numbers().private_value.to_bytes(32, "big")


@pytest.mark.parametrize(
    "pem",
    [
        b"garbage",
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        ed448.Ed448PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        ),
    ],
)
def test_unsupported_or_bad_keys_are_bad_key(pem: bytes) -> None:
    with pytest.raises(BadKey) as info:
        private_key_from_pem(pem)
    assert info.value.code == "bad_key"


def test_missing_and_unsafe_names(ed_dir: Path) -> None:
    with pytest.raises(IdentityNotFound):
        load_signing_identity(ed_dir, "org9", "admin@org9")
    with pytest.raises(IdentityNotFound):
        load_signing_identity(ed_dir, "org1", "nobody@org1")
    with pytest.raises(BadOrgName):
        load_signing_identity(ed_dir, "../org1", "admin@org1")
    with pytest.raises(BadArgument):
        load_signing_identity(ed_dir, "org1", "../../org2/users/admin@org2")


def test_key_not_matching_certificate_is_bad_key(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1"], clients=2)
    users = tmp_path / "orgs" / "org1" / "users"
    shutil.copy(users / "client1@org1" / "signkey.pem", users / "client0@org1" / "signkey.pem")
    with pytest.raises(BadKey):
        load_signing_identity(tmp_path, "org1", "client0@org1")
    node_tls = tmp_path / "orgs" / "org1" / "nodes" / "peer0.org1" / "tls.key"
    node_tls.unlink()
    with pytest.raises(IdentityNotFound):
        load_node_identity(tmp_path, "org1")
