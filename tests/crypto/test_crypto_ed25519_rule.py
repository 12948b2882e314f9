"""The platform's one Ed25519 rule: ZIP-215 (ed25519-zebra), keys of small order refused.

Vectors pin the rule on both sides of the places where Ed25519 implementations disagree,
and show that every path (the suite, batch workers, certificates) applies the same one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ed25519_zebra
import nacl.exceptions
import nacl.signing
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.crypto import ED25519, BatchVerifier, VerifyJob
from consortia.crypto.suites import _SMALL_ORDER_KEYS, ed25519_verify
from consortia.identity.certs import cert_issued_by, crl_signed_by

from .ed25519_ref import L, public_key, sign_with_nonce_point, small_order_encodings, torsion

# RFC 8032 section 7.1, tests 1-3: (secret seed, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]
SEED = bytes(range(32))
KEY = public_key(SEED)
SIGNED_M = ED25519.private_from_bytes(SEED).sign(b"m")


def pynacl_accepts(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


def mixed_order_signature(message: bytes) -> bytes:
    """Valid under ZIP-215's cofactored check, refused by a cofactorless one (libsodium)."""
    return sign_with_nonce_point(SEED, message, r=123456789, extra=torsion()[1])


def non_canonical_s(signature: bytes) -> bytes:
    return signature[:32] + (int.from_bytes(signature[32:], "little") + L).to_bytes(32, "little")


# (name, key, message, signature, valid under the platform's rule)
VECTORS: list[tuple[str, bytes, bytes, bytes, bool]] = [
    *[
        (f"rfc8032-{i + 1}", bytes.fromhex(k), bytes.fromhex(m), bytes.fromhex(s), True)
        for i, (_, k, m, s) in enumerate(RFC8032)
    ],
    ("mixed-order R (ZIP-215 only)", KEY, b"m", mixed_order_signature(b"m"), True),
    ("mixed-order R, other message", KEY, b"n", mixed_order_signature(b"m"), False),
    ("S + L (non-canonical S)", KEY, b"m", non_canonical_s(SIGNED_M), False),
    ("wrong key", bytes.fromhex(RFC8032[1][1]), b"", bytes.fromhex(RFC8032[0][3]), False),
    ("short signature", KEY, b"m", SIGNED_M[:63], False),
    ("short key", KEY[:31], b"m", SIGNED_M, False),
    *[
        (f"small-order key {k.hex()[:8]}", k, b"any message", (1).to_bytes(32, "little") + bytes(32), False)
        for k in sorted(small_order_encodings())
    ],
]


@pytest.mark.parametrize("seed,key,message,signature", RFC8032)
def test_signing_matches_rfc8032(seed: str, key: str, message: str, signature: str) -> None:
    private = ED25519.private_from_bytes(bytes.fromhex(seed))
    assert private.public_key.hex() == key
    assert private.sign(bytes.fromhex(message)).hex() == signature


@pytest.mark.parametrize("name,key,message,signature,valid", VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors(name: str, key: bytes, message: bytes, signature: bytes, valid: bool) -> None:
    assert ED25519.verify(key, message, signature) is valid


def test_zip215_accepts_a_cofactored_only_signature_that_libsodium_refuses() -> None:
    # Why one rule matters: the two libraries disagree on this signature, so nodes picking
    # different ones would disagree on a block holding it.
    sig = mixed_order_signature(b"m")
    assert ed25519_verify(KEY, b"m", sig)
    assert not pynacl_accepts(KEY, b"m", sig)


def test_non_canonical_s_is_refused_though_the_equation_holds() -> None:
    assert ed25519_verify(KEY, b"m", SIGNED_M)
    assert not ed25519_verify(KEY, b"m", non_canonical_s(SIGNED_M))


def test_small_order_keys_are_every_encoding_of_the_torsion_points() -> None:
    assert small_order_encodings() == _SMALL_ORDER_KEYS
    forged = (1).to_bytes(32, "little") + bytes(32)  # R = identity, S = 0
    for key in _SMALL_ORDER_KEYS:
        # ZIP-215 alone takes this forgery for any message; the rule refuses the key.
        assert ed25519_zebra.ed_verify(forged, b"whatever", key)
        assert not ed25519_verify(key, b"whatever", forged)


def test_buffers_other_than_bytes() -> None:
    key = ED25519.private_from_bytes(SEED)
    sig = key.sign(b"m")
    assert ed25519_verify(bytearray(key.public_key), memoryview(b"m"), bytearray(sig))
    assert not ed25519_verify(bytearray(key.public_key), memoryview(b"n"), bytearray(sig))
    with pytest.raises(TypeError):
        ed25519_verify(key.public_key, "m", sig)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=200))
def test_honest_signatures_verify_as_libsodium_verifies_them(seed: bytes, message: bytes) -> None:
    key = ED25519.private_from_bytes(seed)
    sig = key.sign(message)
    assert ed25519_verify(key.public_key, message, sig) and pynacl_accepts(key.public_key, message, sig)
    flipped = sig[:10] + bytes([sig[10] ^ 4]) + sig[11:]
    assert not ed25519_verify(key.public_key, message, flipped)
    assert not pynacl_accepts(key.public_key, message, flipped)


def test_batch_workers_apply_the_same_rule() -> None:
    jobs = [VerifyJob("ed25519", key, message, sig) for _, key, message, sig, _ in VECTORS] * 3
    expected = [valid for *_, valid in VECTORS] * 3
    verifier = BatchVerifier(2)
    try:
        in_workers = verifier.verify(jobs)
        assert verifier._procs is not None  # the batch really went to worker processes
    finally:
        verifier.close()
    assert in_workers == expected
    assert BatchVerifier(0).verify(jobs) == expected


# ---- certificates and CRLs: an Ed25519 CA's signature is judged by the same rule ---------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca() -> tuple[Ed25519PrivateKey, x509.Certificate]:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ca"))
        .issuer_name(_name("ca"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    return key, cert


def _resigned(der: bytes, tbs: bytes) -> bytes:
    # An Ed25519 signature is the DER's last 64 bytes: swap in a mixed-order-R one.
    return der[:-64] + sign_with_nonce_point(SEED, tbs, r=987654321, extra=torsion()[3])


def test_certificate_signature_follows_the_rule_not_openssl() -> None:
    ca_key, ca = _ca()
    leaf_key = Ed25519PrivateKey.generate()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("leaf"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(ca.not_valid_before_utc)
        .not_valid_after(ca.not_valid_after_utc)
        .sign(ca_key, None)
    )
    assert cert_issued_by(leaf, ca)
    der = leaf.public_bytes(Encoding.DER)
    odd = x509.load_der_x509_certificate(_resigned(der, leaf.tbs_certificate_bytes))
    with pytest.raises(InvalidSignature):
        odd.verify_directly_issued_by(ca)  # OpenSSL checks without the cofactor
    assert cert_issued_by(odd, ca)  # as every node does, whatever its OpenSSL
    tampered = x509.load_der_x509_certificate(der[:-1] + bytes([der[-1] ^ 1]))
    assert not cert_issued_by(tampered, ca)
    assert not cert_issued_by(leaf, leaf)  # names do not match


def test_crl_signature_follows_the_rule() -> None:
    ca_key, ca = _ca()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(ca.not_valid_before_utc)
        .next_update(ca.not_valid_after_utc)
        .sign(ca_key, None)
    )
    assert crl_signed_by(crl, ca)
    der = crl.public_bytes(Encoding.DER)
    odd = x509.load_der_x509_crl(_resigned(der, crl.tbs_certlist_bytes))
    assert not odd.is_signature_valid(ca.public_key())
    assert crl_signed_by(odd, ca)
    assert not crl_signed_by(x509.load_der_x509_crl(der[:-1] + bytes([der[-1] ^ 1])), ca)
