"""HELLO: mapping a TLS session to a validator, without sockets (the protocol is sans-IO)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from network_kit import ORGS, channel_with_validators

from consortia.identity import MSP, generate_consortium, revoke
from consortia.identity.certs import cert_der, load_certificate, to_ms, utc_now
from consortia.identity.layout import SIGNCERT, TLS_CERT, node_dir
from consortia.identity.wallet import NodeIdentity, load_node_identity
from consortia.network import HelloRefused
from consortia.network.hello import (
    CHALLENGE_BYTES,
    Challenge,
    Hello,
    HelloVerifier,
    decode_challenge,
    decode_hello,
    make_hello,
)
from consortia.types import ChannelConfig, encode

YEAR_MS = 365 * 24 * 3600 * 1000


def tls_der(node: NodeIdentity) -> bytes:
    return cert_der(load_certificate(node.tls_cert_path.read_bytes()))


@pytest.fixture(scope="module")
def config(crypto: Path) -> ChannelConfig:
    config: ChannelConfig = channel_with_validators(crypto, [(org, f"peer0.{org}") for org in ORGS])
    return config


@pytest.fixture(scope="module")
def verifier(config: ChannelConfig) -> HelloVerifier:
    return HelloVerifier(config, MSP(config))


def node(crypto: Path, org: str, index: int = 0) -> NodeIdentity:
    return load_node_identity(crypto, org, f"peer{index}.{org}")


def hello_of(config: ChannelConfig, who: NodeIdentity, challenge: bytes, tls: bytes | None = None) -> Hello:
    return make_hello(config, who.cert_der, who.sign, tls if tls is not None else tls_der(who), challenge)


def now() -> int:
    return to_ms(utc_now())


def test_valid_hello_names_the_validator(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    challenge = os.urandom(CHALLENGE_BYTES)
    for org in ORGS:
        who = node(crypto, org)
        validator = verifier.verify(hello_of(config, who, challenge), tls_der(who), challenge, now())
        assert (validator.name, validator.org) == (f"peer0.{org}", org)


def test_proof_for_another_challenge_is_refused(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    who = node(crypto, "org1")
    hello = hello_of(config, who, os.urandom(CHALLENGE_BYTES))  # recorded earlier: a replay
    with pytest.raises(HelloRefused, match="bad_signature"):
        verifier.verify(hello, tls_der(who), os.urandom(CHALLENGE_BYTES), now())


def test_proof_relayed_over_another_tls_session_is_refused(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    # A relay holding its own consortium TLS certificate forwards a genuine proof.
    who, relay = node(crypto, "org1"), node(crypto, "org1", 1)
    challenge = os.urandom(CHALLENGE_BYTES)
    with pytest.raises(HelloRefused, match="bad_signature"):
        verifier.verify(hello_of(config, who, challenge), tls_der(relay), challenge, now())


def test_claiming_another_validators_certificate_is_refused(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    # Certificates are public: peer0.org1 presents peer0.org2's, but cannot sign for it.
    liar, victim = node(crypto, "org1"), node(crypto, "org2")
    challenge = os.urandom(CHALLENGE_BYTES)
    forged = Hello(victim.cert_der, hello_of(config, liar, challenge).signature)
    with pytest.raises(HelloRefused, match="bad_signature"):
        verifier.verify(forged, tls_der(liar), challenge, now())


def test_node_that_is_not_a_validator_is_refused(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    outsider = node(crypto, "org1", 1)  # a real node of org1, but not in the validator set
    challenge = os.urandom(CHALLENGE_BYTES)
    with pytest.raises(HelloRefused, match="not a validator"):
        verifier.verify(hello_of(config, outsider, challenge), tls_der(outsider), challenge, now())


def test_tls_certificate_of_another_org_is_refused(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    # org1's identity on a TLS session authenticated by org2's TLS CA.
    who, other_org = node(crypto, "org1"), node(crypto, "org2")
    challenge = os.urandom(CHALLENGE_BYTES)
    hello = hello_of(config, who, challenge, tls=tls_der(other_org))
    with pytest.raises(HelloRefused, match="TLS certificate of 'org2'"):
        verifier.verify(hello, tls_der(other_org), challenge, now())


def test_expired_and_not_yet_valid_identities_are_refused(
    crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    who = node(crypto, "org3")
    challenge = os.urandom(CHALLENGE_BYTES)
    hello = hello_of(config, who, challenge)
    with pytest.raises(HelloRefused, match="certificate_expired"):
        verifier.verify(hello, tls_der(who), challenge, now() + 2 * YEAR_MS)
    with pytest.raises(HelloRefused, match="certificate_not_yet_valid"):
        verifier.verify(hello, tls_der(who), challenge, now() - YEAR_MS)


def test_revoked_identity_is_refused(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ORGS, nodes=1, clients=0)
    before = channel_with_validators(tmp_path, [(org, f"peer0.{org}") for org in ORGS])
    revoke(tmp_path, "org2", node_dir(tmp_path, "org2", "peer0.org2") / SIGNCERT)
    after = channel_with_validators(tmp_path, [(org, f"peer0.{org}") for org in ORGS])
    who = node(tmp_path, "org2")
    challenge = os.urandom(CHALLENGE_BYTES)
    hello = hello_of(before, who, challenge)
    assert (
        HelloVerifier(before, MSP(before)).verify(hello, tls_der(who), challenge, now()).name == "peer0.org2"
    )
    with pytest.raises(HelloRefused, match="certificate_revoked"):
        HelloVerifier(after, MSP(after)).verify(hello, tls_der(who), challenge, now())


def test_tls_certificate_from_another_consortium_names_no_org(
    crypto: Path, foreign_crypto: Path, config: ChannelConfig, verifier: HelloVerifier
) -> None:
    who = node(crypto, "org1")
    foreign_tls = cert_der(
        load_certificate((node_dir(foreign_crypto, "org1", "peer0.org1") / TLS_CERT).read_bytes())
    )
    challenge = os.urandom(CHALLENGE_BYTES)
    with pytest.raises(HelloRefused, match="not issued by any TLS CA"):
        verifier.verify(hello_of(config, who, challenge, tls=foreign_tls), foreign_tls, challenge, now())


def test_proof_is_bound_to_the_channel(crypto: Path, config: ChannelConfig, verifier: HelloVerifier) -> None:
    import msgspec

    other_channel = msgspec.structs.replace(config, channel="other")
    who = node(crypto, "org1")
    challenge = os.urandom(CHALLENGE_BYTES)
    with pytest.raises(HelloRefused, match="bad_signature"):
        verifier.verify(hello_of(other_channel, who, challenge), tls_der(who), challenge, now())


def test_malformed_handshake_messages_are_refused() -> None:
    assert decode_challenge(encode(Challenge(b"c" * CHALLENGE_BYTES))) == b"c" * CHALLENGE_BYTES
    with pytest.raises(HelloRefused):
        decode_challenge(encode(Challenge(b"short")))
    with pytest.raises(HelloRefused):
        decode_challenge(b"\xc1")
    with pytest.raises(HelloRefused):
        decode_hello(encode(["not", "a", "hello"]))
    with pytest.raises(HelloRefused):
        decode_hello(encode(Hello(b"cert", b"s" * 10_000)))


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), challenge=st.binary(min_size=32, max_size=32))
def test_arbitrary_hello_bytes_only_ever_raise_hello_refused(
    crypto: Path, verifier: HelloVerifier, payload: bytes, challenge: bytes
) -> None:
    who = node(crypto, "org1")
    with pytest.raises(HelloRefused):
        verifier.verify(decode_hello(payload), tls_der(who), challenge, now())
