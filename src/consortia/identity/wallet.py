"""Signing identities loaded from a crypto directory: a certificate and its private key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from consortia.crypto import ED25519, P256, SECP256K1, InvalidKey, PrivateKey, public_key_of, sha256
from consortia.identity import layout
from consortia.identity.certs import cert_der, load_certificate
from consortia.identity.errors import BadCertificate, BadKey


@dataclass(frozen=True)
class SigningIdentity:
    """An identity that signs transactions (or blocks) with the key of its certificate."""

    org: str
    name: str
    cert_der: bytes
    key: PrivateKey = field(repr=False)  # never print a private key

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    @property
    def cert_hash(self) -> bytes:
        return sha256(self.cert_der)


@dataclass(frozen=True)
class NodeIdentity(SigningIdentity):
    """A node's signing identity plus its TLS certificate and key files (PEM)."""

    tls_cert_path: Path
    tls_key_path: Path


def private_key_from_pem(pem: bytes) -> PrivateKey:
    """A suite PrivateKey from an unencrypted PEM (PKCS#8 or traditional) key.

    Raises BadKey for malformed, encrypted or unsupported keys (only Ed25519,
    secp256k1 and P-256 are supported).
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"cannot load private key: {exc}") from exc
    try:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            return ED25519.private_from_bytes(raw)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            raw = key.private_numbers().private_value.to_bytes(32, "big")
            if isinstance(key.curve, ec.SECP256K1):
                return SECP256K1.private_from_bytes(raw)
            if isinstance(key.curve, ec.SECP256R1):
                return P256.private_from_bytes(raw)
    except InvalidKey as exc:
        raise BadKey(str(exc)) from exc
    raise BadKey(f"unsupported private key type {type(key).__name__}")


def private_key_to_pem(key: PrivateKey) -> bytes:
    return key.to_cryptography().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load(directory: Path) -> tuple[bytes, PrivateKey]:
    cert = load_certificate(layout.read_bytes(directory / layout.SIGNCERT))
    key = private_key_from_pem(layout.read_bytes(directory / layout.SIGNKEY))
    try:
        suite, pub = public_key_of(cert.public_key())
    except (InvalidKey, ValueError, UnsupportedAlgorithm) as exc:
        raise BadCertificate(f"{directory / layout.SIGNCERT}: {exc}") from exc
    if (suite, pub) != (key.suite, key.public_key):
        raise BadKey(f"{directory / layout.SIGNKEY} does not match {directory / layout.SIGNCERT}")
    return cert_der(cert), key


def load_signing_identity(crypto_dir: Path, org: str, name: str) -> SigningIdentity:
    """The user identity `name` (e.g. 'client0@org1') of `org`.

    Raises IdentityNotFound (missing files), BadCertificate, BadKey (malformed or mismatched
    key), BadOrgName / BadArgument (unsafe names).
    """
    layout.require_org(crypto_dir, org)
    der, key = _load(layout.user_dir(crypto_dir, org, name))
    return SigningIdentity(org, name, der, key)


def load_node_identity(crypto_dir: Path, org: str, name: str | None = None) -> NodeIdentity:
    """The node identity `name` of `org` (default 'peer0.<org>') with its TLS files.

    Raises the same errors as load_signing_identity.
    """
    layout.require_org(crypto_dir, org)
    name = name if name is not None else layout.node_name(org, 0)
    directory = layout.node_dir(crypto_dir, org, name)
    der, key = _load(directory)
    tls_cert, tls_key = directory / layout.TLS_CERT, directory / layout.TLS_KEY
    for path in (tls_cert, tls_key):
        layout.read_bytes(path)  # fail here, with the path, rather than inside the TLS stack
    return NodeIdentity(org, name, der, key, tls_cert, tls_key)
