"""MSP.validate: every role, and one typed rejection per way a certificate can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.crypto import ED25519, P256, SECP256K1, sha256, suite_by_name
from consortia.identity import (
    MSP,
    BadCertificate,
    BadConfig,
    BadRole,
    BadSignature,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    IdentityError,
    UnknownIssuer,
    WrongSuite,
    channel_config_from_crypto,
    generate_consortium,
    load_node_identity,
    load_signing_identity,
    revoke,
)
from consortia.identity.certs import (
    ATTRIBUTES_OID,
    CryptoPrivateKey,
    cert_der,
    issue_identity,
    load_certificate,
    to_ms,
)
from consortia.identity.cryptogen import load_org_ca
from consortia.types import ChannelConfig, OrgConfig

DAY_MS = 86_400_000


def _der(path: Path) -> bytes:
    return cert_der(load_certificate(path.read_bytes()))


def _identity_der(crypto_dir: Path, org: str, name: str) -> bytes:
    return load_signing_identity(crypto_dir, org, name).cert_der


def test_every_role_of_every_org_validates(crypto_dir: Path, msp: MSP, suite: str, now_ms: int) -> None:
    for org in ("org1", "org2", "org3"):
        for name, role in (
            (f"admin@{org}", "admin"),
            (f"client0@{org}", "client"),
            (f"client1@{org}", "client"),
        ):
            signer = load_signing_identity(crypto_dir, org, name)
            identity = msp.validate(signer.cert_der, now_ms)
            assert identity.caller.org == org
            assert identity.caller.role == role
            assert identity.caller.subject == name
            assert identity.caller.cert_hash == sha256(signer.cert_der)
            assert identity.suite == suite
            assert identity.public_key == signer.key.public_key
            assert suite_by_name(suite).verify(identity.public_key, b"m", signer.sign(b"m"))
        for i in range(2):
            node = load_node_identity(crypto_dir, org, f"peer{i}.{org}")
            assert msp.verify_block_signer(node.cert_der, now_ms).caller.role == "node"


def test_attributes_come_from_the_extension(crypto_dir: Path, msp: MSP, now_ms: int) -> None:
    caller = msp.validate(_identity_der(crypto_dir, "org1", "client0@org1"), now_ms).caller
    assert caller.attributes == {"dept": "fx", "level": "3"}
    assert msp.validate(_identity_der(crypto_dir, "org1", "client1@org1"), now_ms).caller.attributes == {}


def test_block_signer_must_be_a_node(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    msp = MSP(ed_config)
    for name in ("admin@org1", "client0@org1"):
        with pytest.raises(BadRole) as info:
            msp.verify_block_signer(_identity_der(ed_dir, "org1", name), now_ms)
        assert info.value.code == "bad_role"


def test_verify_checks_the_signature(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    msp = MSP(ed_config)
    signer = load_signing_identity(ed_dir, "org2", "client0@org2")
    assert msp.verify(signer.cert_der, b"tx", signer.sign(b"tx"), now_ms).caller.org == "org2"
    with pytest.raises(BadSignature):
        msp.verify(signer.cert_der, b"tx2", signer.sign(b"tx"), now_ms)


def test_certificate_of_another_consortium_is_unknown_issuer(
    tmp_path: Path, ed_config: ChannelConfig, now_ms: int
) -> None:
    generate_consortium(tmp_path, ["org1", "org2", "org3"])  # same names, different CAs
    msp = MSP(ed_config)
    with pytest.raises(UnknownIssuer) as info:
        msp.validate(_identity_der(tmp_path, "org1", "client0@org1"), now_ms)
    assert info.value.code == "unknown_issuer"


def test_org_outside_the_channel_is_unknown_issuer(ed_dir: Path, now_ms: int) -> None:
    config = channel_config_from_crypto(ed_dir, ["org1", "org2"], "c", "ch")
    with pytest.raises(UnknownIssuer):
        MSP(config).validate(_identity_der(ed_dir, "org3", "admin@org3"), now_ms)


def test_tls_certificate_is_not_an_identity(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    tls = _der(ed_dir / "orgs" / "org1" / "nodes" / "peer0.org1" / "tls.crt")
    with pytest.raises(UnknownIssuer):
        MSP(ed_config).validate(tls, now_ms)


def test_tampered_signature_is_unknown_issuer(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    der = bytearray(_identity_der(ed_dir, "org1", "client0@org1"))
    der[-1] ^= 0x01  # last byte of the CA's signature
    with pytest.raises(UnknownIssuer):
        MSP(ed_config).validate(bytes(der), now_ms)


def test_ca_certificate_is_not_an_identity(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    with pytest.raises(BadRole):
        MSP(ed_config).validate(ed_config.orgs[0].ca_certs[0], now_ms)


def test_validity_window_bounds_are_inclusive(ed_dir: Path, ed_config: ChannelConfig) -> None:
    der = _identity_der(ed_dir, "org1", "client0@org1")
    cert = load_certificate(der)
    start, end = to_ms(cert.not_valid_before_utc), to_ms(cert.not_valid_after_utc)
    msp = MSP(ed_config)
    assert msp.validate(der, start).caller.subject == "client0@org1"
    assert msp.validate(der, end).caller.subject == "client0@org1"
    with pytest.raises(CertificateNotYetValid) as early:
        msp.validate(der, start - 1)
    assert early.value.code == "certificate_not_yet_valid"
    with pytest.raises(CertificateExpired) as late:
        msp.validate(der, end + 1)
    assert late.value.code == "certificate_expired"


def test_generated_in_the_past_is_expired_and_in_the_future_not_yet_valid(
    tmp_path: Path, now_ms: int
) -> None:
    past = datetime.now(UTC) - timedelta(days=400)
    future = datetime.now(UTC) + timedelta(days=5)
    for sub, moment, error in (
        ("past", past, CertificateExpired),
        ("future", future, CertificateNotYetValid),
    ):
        root = tmp_path / sub
        generate_consortium(root, ["org1"], now=moment, days=30)
        msp = MSP(channel_config_from_crypto(root, ["org1"], "c", "ch"))
        with pytest.raises(error):
            msp.validate(_identity_der(root, "org1", "admin@org1"), now_ms)


def test_leaf_is_invalid_once_its_ca_expires(tmp_path: Path) -> None:
    """A certificate issued directly, outliving its CA, is bounded by the CA's window."""
    generate_consortium(tmp_path, ["org1"], ca_days=10)
    ca_cert, ca_key = load_org_ca(tmp_path, "org1")
    start = ca_cert.not_valid_before_utc
    leaf = x509.CertificateBuilder(
        subject_name=x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                x509.NameAttribute(NameOID.COMMON_NAME, "long@org1"),
            ]
        ),
        issuer_name=ca_cert.subject,
        public_key=ED25519.generate().to_cryptography().public_key(),
        serial_number=7,
        not_valid_before=start,
        not_valid_after=start + timedelta(days=100),
    ).sign(ca_key, None)
    msp = MSP(channel_config_from_crypto(tmp_path, ["org1"], "c", "ch"))
    assert msp.validate(cert_der(leaf), to_ms(start) + DAY_MS).caller.role == "client"
    with pytest.raises(CertificateExpired):
        msp.validate(cert_der(leaf), to_ms(ca_cert.not_valid_after_utc) + 1)


def test_revoked_after_revoke_and_config_update(tmp_path: Path, now_ms: int) -> None:
    generate_consortium(tmp_path, ["org1", "org2"])
    msp = MSP(channel_config_from_crypto(tmp_path, ["org1", "org2"], "c", "ch"))
    victim = tmp_path / "orgs" / "org1" / "users" / "client0@org1" / "signcert.pem"
    der = _der(victim)
    assert msp.validate(der, now_ms).caller.org == "org1"
    revoke(tmp_path, "org1", victim)
    updated = msp.with_config(channel_config_from_crypto(tmp_path, ["org1", "org2"], "c", "ch"))
    assert updated.cached_entries() == 1  # only the CRL changed: parse results are reused
    with pytest.raises(CertificateRevoked) as info:
        updated.validate(der, now_ms)
    assert info.value.code == "certificate_revoked"
    assert msp.validate(der, now_ms).caller.org == "org1"  # the old config still admits it
    assert updated.validate(_identity_der(tmp_path, "org1", "admin@org1"), now_ms).caller.role == "admin"


def test_with_config_drops_cache_when_cas_change(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    msp = MSP(ed_config)
    msp.validate(_identity_der(ed_dir, "org3", "admin@org3"), now_ms)
    smaller = channel_config_from_crypto(ed_dir, ["org1", "org2"], "test-chain", "main")
    fresh = msp.with_config(smaller)
    assert fresh.cached_entries() == 0
    with pytest.raises(UnknownIssuer):
        fresh.validate(_identity_der(ed_dir, "org3", "admin@org3"), now_ms)


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x01", b"not a certificate", b"\x30" * 20_000])
def test_malformed_der_is_bad_certificate(ed_config: ChannelConfig, der: bytes, now_ms: int) -> None:
    msp = MSP(ed_config)
    for _ in range(2):  # the second answer comes from the cache and must be the same
        with pytest.raises(BadCertificate) as info:
            msp.validate(der, now_ms)
        assert info.value.code == "bad_certificate"


@settings(max_examples=200, deadline=None)
@given(der=st.binary(max_size=600), at_ms=st.integers(min_value=0, max_value=2**40))
def test_arbitrary_bytes_raise_only_identity_errors(ed_config: ChannelConfig, der: bytes, at_ms: int) -> None:
    with pytest.raises(IdentityError):
        MSP(ed_config).validate(der, at_ms)


@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # edits may make the serial negative
@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_is_rejected(
    ed_dir: Path, ed_config: ChannelConfig, position: int, flip: int
) -> None:
    """The CA signature covers every byte: no edit of a certificate yields an identity."""
    der = bytearray(_identity_der(ed_dir, "org2", "client0@org2"))
    der[position % len(der)] ^= flip
    with pytest.raises(IdentityError):
        MSP(ed_config).validate(bytes(der), to_ms(datetime.now(UTC)))


def test_truncations_of_a_real_certificate_are_rejected(
    ed_dir: Path, ed_config: ChannelConfig, now_ms: int
) -> None:
    der = _identity_der(ed_dir, "org1", "client0@org1")
    msp = MSP(ed_config)
    for cut in range(1, len(der), 7):
        with pytest.raises(IdentityError):
            msp.validate(der[:cut], now_ms)


def test_wrong_suite(tmp_path: Path, now_ms: int) -> None:
    """A secp256k1 identity on an ed25519 channel, from a CA the channel trusts."""
    generate_consortium(tmp_path, ["org1"])
    ca_cert, ca_key = load_org_ca(tmp_path, "org1")
    now = datetime.now(UTC)
    msp = MSP(channel_config_from_crypto(tmp_path, ["org1"], "c", "ch"))
    for key in (SECP256K1.generate(), P256.generate()):
        cert = issue_identity(
            ca_cert,
            ca_key,
            org="org1",
            name="odd@org1",
            role="client",
            public_key=key.to_cryptography().public_key(),
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=1),
        )
        with pytest.raises(WrongSuite) as info:
            msp.validate(cert_der(cert), now_ms)
        assert info.value.code == "wrong_suite"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = issue_identity(
        ca_cert,
        ca_key,
        org="org1",
        name="rsa@org1",
        role="client",
        public_key=rsa_key.public_key(),  # type: ignore[arg-type]
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=1),
    )
    with pytest.raises(WrongSuite):
        msp.validate(cert_der(cert), now_ms)


def _ou(value: str) -> x509.NameAttribute[str]:
    return x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, value)


def _direct(
    ca_cert: x509.Certificate, ca_key: CryptoPrivateKey, subject: list[x509.NameAttribute[str]]
) -> bytes:
    now = datetime.now(UTC)
    builder = x509.CertificateBuilder(
        subject_name=x509.Name(subject),
        issuer_name=ca_cert.subject,
        public_key=ED25519.generate().to_cryptography().public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=now - timedelta(hours=1),
        not_valid_after=now + timedelta(days=1),
    )
    return cert_der(builder.sign(ca_key, None if isinstance(ca_key, Ed25519PrivateKey) else hashes.SHA256()))


def test_missing_or_ambiguous_role_is_bad_role(tmp_path: Path, now_ms: int) -> None:
    generate_consortium(tmp_path, ["org1"])
    ca_cert, ca_key = load_org_ca(tmp_path, "org1")
    msp = MSP(channel_config_from_crypto(tmp_path, ["org1"], "c", "ch"))
    cn = x509.NameAttribute(NameOID.COMMON_NAME, "x@org1")
    ou = _ou
    for subject in ([cn], [ou("root"), cn], [ou("admin"), ou("client"), cn]):
        with pytest.raises(BadRole):
            msp.validate(_direct(ca_cert, ca_key, subject), now_ms)
    # An extra non-role OU is fine; a missing common name is not.
    assert (
        msp.validate(_direct(ca_cert, ca_key, [ou("payments"), ou("admin"), cn]), now_ms).caller.role
        == "admin"
    )
    with pytest.raises(BadCertificate):
        msp.validate(_direct(ca_cert, ca_key, [ou("admin")]), now_ms)


def test_malformed_attribute_extension_is_bad_certificate(tmp_path: Path, now_ms: int) -> None:
    generate_consortium(tmp_path, ["org1"])
    ca_cert, ca_key = load_org_ca(tmp_path, "org1")
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder(
            subject_name=x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "x@org1"),
                ]
            ),
            issuer_name=ca_cert.subject,
            public_key=ED25519.generate().to_cryptography().public_key(),
            serial_number=99,
            not_valid_before=now - timedelta(hours=1),
            not_valid_after=now + timedelta(days=1),
        )
        .add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, b"\x92\x01\x02"), critical=False)
        .sign(ca_key, None)
    )
    msp = MSP(channel_config_from_crypto(tmp_path, ["org1"], "c", "ch"))
    with pytest.raises(BadCertificate):
        msp.validate(cert_der(cert), now_ms)


def test_bad_configuration_is_rejected(ed_config: ChannelConfig) -> None:
    org1, org2 = ed_config.orgs[0], ed_config.orgs[1]

    def with_orgs(*orgs: OrgConfig) -> ChannelConfig:
        return ChannelConfig(
            ed_config.chain_id,
            ed_config.channel,
            ed_config.suite,
            list(orgs),
            ed_config.policies,
            ed_config.consensus,
        )

    cases = [
        OrgConfig("org1", [b"junk"], org1.tls_ca_certs, org1.crls),
        OrgConfig("org1", org1.ca_certs, [b"junk"], org1.crls),
        OrgConfig("org1", org1.ca_certs, org1.tls_ca_certs, [b"junk"]),
        OrgConfig("org1", org1.ca_certs, org1.tls_ca_certs, org2.crls),  # CRL of another org's CA
    ]
    for org in cases:
        with pytest.raises(BadConfig):
            MSP(with_orgs(org, org2))
    with pytest.raises(BadConfig):  # one CA claimed by two orgs
        MSP(with_orgs(org1, OrgConfig("org2", org1.ca_certs, org2.tls_ca_certs, [])))


def test_non_ca_certificate_in_config_is_rejected(ed_dir: Path, ed_config: ChannelConfig) -> None:
    org1 = ed_config.orgs[0]
    leaf = _identity_der(ed_dir, "org1", "admin@org1")
    config = ChannelConfig(
        "c", "ch", "ed25519", [OrgConfig("org1", [leaf], org1.tls_ca_certs, [])], {}, ed_config.consensus
    )
    with pytest.raises(BadConfig):
        MSP(config)


def test_tls_trust_roots_are_the_tls_cas_in_order(ed_dir: Path, ed_config: ChannelConfig) -> None:
    roots = MSP(ed_config).tls_trust_roots()
    assert roots == [_der(ed_dir / "orgs" / o / "tlsca" / "tlsca.crt") for o in ("org1", "org2", "org3")]
    for der in roots:
        key = load_certificate(der).public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)


def test_cache_is_bounded_and_hits_skip_parsing(ed_dir: Path, ed_config: ChannelConfig, now_ms: int) -> None:
    msp = MSP(ed_config, cache_entries_max=2)
    ders = [_identity_der(ed_dir, o, f"admin@{o}") for o in ("org1", "org2", "org3")]
    for der in ders:
        msp.validate(der, now_ms)
    assert msp.cached_entries() == 2
    msp._parse_and_chain = None  # type: ignore[assignment,method-assign]  # a hit must not parse
    assert msp.validate(ders[2], now_ms).caller.org == "org3"


def test_ecdsa_ca_can_sign_with_sha256_only(tmp_path: Path) -> None:
    """A sanity check of the assumption that every suite's CA signs with SHA-256 or Ed25519."""
    generate_consortium(tmp_path, ["org1"], suite="p256")
    ca_cert, _ = load_org_ca(tmp_path, "org1")
    assert isinstance(ca_cert.signature_hash_algorithm, hashes.SHA256)
