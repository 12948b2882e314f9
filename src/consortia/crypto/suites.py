"""Signature suites: Ed25519 (default), secp256k1 and NIST P-256.

Every suite signs and verifies raw bytes with raw public keys, so the hot path never
touches X.509 objects. Each suite is backed by the fastest well-kept library measured
on our reference host: ed25519-zebra verifies Ed25519 (PyNaCl signs), coincurve does
secp256k1, and `cryptography` P-256.

Whether a signature is valid decides whether a transaction or block is, so every node
must judge it by the same rule whatever library a process has at hand: Ed25519 has one
verification function, `ed25519_verify`, and everything that checks an Ed25519 signature
(admission, blocks, commit certificates, certificates, consensus messages, the SDK, the
worker processes of `BatchVerifier`) goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import coincurve
import ed25519_zebra
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from consortia.crypto.hashing import sha256


class InvalidKey(ValueError):
    """A key's bytes do not form a key of the named suite."""


class SignatureSuite(Protocol):
    name: str

    def generate(self) -> PrivateKey: ...

    def private_from_bytes(self, raw: bytes) -> PrivateKey: ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True)
class PrivateKey:
    """A private key of one suite; `raw` is the suite's canonical private encoding."""

    suite: str
    raw: bytes
    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        return suite_by_name(self.suite).sign(self, message)

    def to_cryptography(self) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
        """The same key as a `cryptography` object, for X.509 and PEM work."""
        if self.suite == ED25519.name:
            return ed25519.Ed25519PrivateKey.from_private_bytes(self.raw)
        curve: ec.EllipticCurve = ec.SECP256K1() if self.suite == SECP256K1.name else ec.SECP256R1()
        return ec.derive_private_key(int.from_bytes(self.raw, "big"), curve)


class Ed25519Suite:
    name = "ed25519"

    def generate(self) -> PrivateKey:
        return self._make(nacl.signing.SigningKey.generate())

    def private_from_bytes(self, raw: bytes) -> PrivateKey:
        if len(raw) != 32:
            raise InvalidKey("ed25519 private key must be 32 bytes")
        return self._make(nacl.signing.SigningKey(raw))

    @staticmethod
    def _make(key: nacl.signing.SigningKey) -> PrivateKey:
        return PrivateKey("ed25519", bytes(key), bytes(key.verify_key))

    def sign(self, key: PrivateKey, message: bytes) -> bytes:
        return nacl.signing.SigningKey(key.raw).sign(message).signature

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return ed25519_verify(public_key, message, signature)


# Every encoding that decodes (under ZIP-215's lenient decoding) to one of the eight points
# of small order: the canonical ones, y + p where that fits in 255 bits, and the "negative
# zero" sign bit where x = 0. Against such a key, R = identity and S = 0 satisfy the
# cofactored equation for every message, so anyone could sign as it.
_SMALL_ORDER_KEYS = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The platform's Ed25519 rule: ZIP-215 (as ed25519-zebra implements it), keys of small
    order refused.

    ZIP-215: S must be canonical (below the group order); A and R may be any encoding that
    decodes to a curve point, non-canonical ones included; the check is cofactored,
    [8](S·B - R - k·A) = 0. This accepts every signature RFC 8032 signers produce, and a
    superset of what libsodium accepts (libsodium also refuses non-canonical and
    small-order points and checks without the cofactor). On top of ZIP-215 a key of small
    order is refused, since any message verifies against it. Wrong lengths are invalid.
    Holds the GIL for the whole check (~70 µs): `BatchVerifier` runs large batches in
    worker processes.
    """
    if type(public_key) is not bytes or type(message) is not bytes or type(signature) is not bytes:
        public_key, message, signature = _as_bytes(public_key), _as_bytes(message), _as_bytes(signature)
    if public_key in _SMALL_ORDER_KEYS:
        return False
    valid: bool = ed25519_zebra.ed_verify(signature, message, public_key)
    return valid


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    # The binding takes exactly `bytes`; other buffers are copied, anything else is a bug.
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    return bytes(data)


class Secp256k1Suite:
    """ECDSA over secp256k1 on SHA-256, compact 64-byte signatures, low-s enforced."""

    name = "secp256k1"

    def generate(self) -> PrivateKey:
        return self._make(coincurve.PrivateKey())

    def private_from_bytes(self, raw: bytes) -> PrivateKey:
        try:
            return self._make(coincurve.PrivateKey(raw))
        except ValueError as exc:
            raise InvalidKey(f"bad secp256k1 private key: {exc}") from exc

    @staticmethod
    def _make(key: coincurve.PrivateKey) -> PrivateKey:
        return PrivateKey("secp256k1", key.secret, key.public_key.format(compressed=True))

    def sign(self, key: PrivateKey, message: bytes) -> bytes:
        der = coincurve.PrivateKey(key.raw).sign(message, hasher=sha256)
        return _der_to_compact(der)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        s = int.from_bytes(signature[32:], "big")
        if s == 0 or s > _SECP256K1_HALF_N:
            return False  # high-s signatures are malleable; refuse them
        try:
            pub = coincurve.PublicKey(public_key)
            return bool(pub.verify(_compact_to_der(signature), message, hasher=sha256))
        except (ValueError, TypeError):
            return False


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N = _SECP256K1_N // 2


def _der_to_compact(der: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    if s > _SECP256K1_HALF_N:
        s = _SECP256K1_N - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _compact_to_der(sig: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


class P256Suite:
    """ECDSA over NIST P-256 with SHA-256, compact 64-byte r||s signatures."""

    name = "p256"
    _N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

    def generate(self) -> PrivateKey:
        return self._make(ec.generate_private_key(ec.SECP256R1()))

    def private_from_bytes(self, raw: bytes) -> PrivateKey:
        if len(raw) != 32:
            raise InvalidKey("p256 private key must be 32 bytes")
        try:
            return self._make(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))
        except ValueError as exc:
            raise InvalidKey(f"bad p256 private key: {exc}") from exc

    @staticmethod
    def _make(key: ec.EllipticCurvePrivateKey) -> PrivateKey:
        raw = key.private_numbers().private_value.to_bytes(32, "big")
        pub = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        return PrivateKey("p256", raw, pub)

    def sign(self, key: PrivateKey, message: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        priv = ec.derive_private_key(int.from_bytes(key.raw, "big"), ec.SECP256R1())
        r, s = decode_dss_signature(priv.sign(message, ec.ECDSA(hashes.SHA256())))
        if s > self._N // 2:
            s = self._N - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        if int.from_bytes(signature[32:], "big") > self._N // 2:
            return False
        try:
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
            pub.verify(_compact_to_der(signature), message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


ED25519 = Ed25519Suite()
SECP256K1 = Secp256k1Suite()
P256 = P256Suite()
SUITES: dict[str, Ed25519Suite | Secp256k1Suite | P256Suite] = {s.name: s for s in (ED25519, SECP256K1, P256)}


def suite_by_name(name: str) -> Ed25519Suite | Secp256k1Suite | P256Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise InvalidKey(f"unknown signature suite {name!r}; known: {sorted(SUITES)}") from None


def public_key_of(key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | object) -> tuple[str, bytes]:
    """The suite name and raw public key bytes of a `cryptography` public key (from a certificate)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ED25519.name, key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        if isinstance(key.curve, ec.SECP256K1):
            return SECP256K1.name, point
        if isinstance(key.curve, ec.SECP256R1):
            return P256.name, point
    raise InvalidKey(f"unsupported public key type {type(key).__name__}")
