"""X.509 building blocks: CA, identity and TLS certificates, CRLs, PEM, attributes.

Identity certificates carry the role in the subject OU ("node" | "admin" | "client"), the
organisation in O and the identity's name in CN. Optional attributes travel in a private,
non-critical extension whose value is the canonical encoding of a str -> str map.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from consortia.crypto import ED25519
from consortia.identity.errors import BadArgument, BadCertificate
from consortia.types import CodecError, decode_canonical, encode

CryptoPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
CryptoPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

# An OID under the UUID arc (ITU-T X.667): ours without registration and clash-free.
ATTRIBUTES_OID = x509.ObjectIdentifier("2.25.200709671434863435952244107960548025723.1")
ATTRIBUTES_MAX = 32
ATTRIBUTE_CHARS_MAX = 256

# What cryptography raises for malformed certificates and CRLs (found by fuzzing: not all
# are ValueErrors, and parsing is partly lazy, so accessors raise them too).
PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, in integer arithmetic (no float rounding)."""
    return (moment - _EPOCH) // _MS


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _signing_hash(key: CryptoPrivateKey) -> hashes.SHA256 | None:
    # Ed25519 hashes internally; cryptography requires no algorithm for it.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def encode_attributes(attributes: Mapping[str, str]) -> bytes:
    """Raises BadArgument for too many, empty or oversized attributes."""
    if len(attributes) > ATTRIBUTES_MAX:
        raise BadArgument(f"at most {ATTRIBUTES_MAX} certificate attributes")
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise BadArgument("certificate attributes must map str to str")
        if not 1 <= len(key) <= ATTRIBUTE_CHARS_MAX or len(value) > ATTRIBUTE_CHARS_MAX:
            raise BadArgument(
                f"attribute names 1..{ATTRIBUTE_CHARS_MAX}, values ..{ATTRIBUTE_CHARS_MAX} chars"
            )
    return encode(dict(attributes))


def decode_attributes(raw: bytes) -> dict[str, str]:
    """Raises BadCertificate unless `raw` is a canonical, bounded str -> str map."""
    try:
        attributes = decode_canonical(raw, dict[str, str])
    except CodecError as exc:
        raise BadCertificate(f"bad attributes extension: {exc}") from exc
    if len(attributes) > ATTRIBUTES_MAX:
        raise BadCertificate(f"more than {ATTRIBUTES_MAX} attributes")
    return attributes


def _name(org: str, common_name: str, role: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
    if role is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def build_ca(
    key: CryptoPrivateKey, org: str, common_name: str, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """A self-signed CA certificate that may sign leaf certificates and CRLs only."""
    name = _name(org, common_name)
    pub = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .sign(key, _signing_hash(key))
    )


def _leaf_builder(
    ca_cert: x509.Certificate,
    subject: x509.Name,
    public_key: CryptoPublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    # A leaf never outlives its CA: validators would reject the tail anyway.
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )


def _key_usage_signing() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_identity(
    ca_cert: x509.Certificate,
    ca_key: CryptoPrivateKey,
    *,
    org: str,
    name: str,
    role: str,
    public_key: CryptoPublicKey,
    not_before: datetime,
    not_after: datetime,
    attributes: Mapping[str, str] | None = None,
) -> x509.Certificate:
    """An identity (signing) certificate: O=org, OU=role, CN=name, signed by the org CA.

    Raises BadArgument for bad attributes.
    """
    builder = _leaf_builder(ca_cert, _name(org, name, role), public_key, not_before, not_after)
    builder = builder.add_extension(_key_usage_signing(), critical=True)
    if attributes:
        ext = x509.UnrecognizedExtension(ATTRIBUTES_OID, encode_attributes(attributes))
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(ca_key, _signing_hash(ca_key))


def issue_tls(
    tlsca_cert: x509.Certificate,
    tlsca_key: CryptoPrivateKey,
    *,
    org: str,
    name: str,
    public_key: CryptoPublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A TLS certificate usable as both server and client (mutual TLS between nodes)."""
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.DNSName(name),
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        ]
    )
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    builder = _leaf_builder(tlsca_cert, _name(org, name, "node"), public_key, not_before, not_after)
    builder = (
        builder.add_extension(_key_usage_signing(), critical=True)
        .add_extension(eku, critical=False)
        .add_extension(san, critical=False)
    )
    return builder.sign(tlsca_key, _signing_hash(tlsca_key))


def build_crl(
    ca_cert: x509.Certificate,
    ca_key: CryptoPrivateKey,
    revoked: Mapping[int, datetime],
    number: int,
    last_update: datetime,
) -> x509.CertificateRevocationList:
    """A CRL listing `revoked` (serial -> revocation time), valid until the CA expires."""
    next_update = max(ca_cert.not_valid_after_utc, last_update + timedelta(seconds=1))
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in sorted(revoked):
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked[serial])
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca_key, _signing_hash(ca_key))


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes; raises BadCertificate."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except PARSE_ERRORS as exc:
        raise BadCertificate(f"not a certificate: {exc}") from exc


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key: CryptoPrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (protected by file mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def name_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attr.value) for attr in name.get_attributes_for_oid(oid)]


def common_name(cert: x509.Certificate) -> str:
    values = name_values(cert.subject, NameOID.COMMON_NAME)
    return values[0] if values else ""


def cert_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether `ca_cert` issued `cert` (issuer name and signature both match)."""
    try:
        return cert.issuer == ca_cert.subject and _signed_by(cert, cert.tbs_certificate_bytes, ca_cert)
    except PARSE_ERRORS:
        return False


def crl_signed_by(crl: x509.CertificateRevocationList, ca_cert: x509.Certificate) -> bool:
    """Whether `ca_cert` issued `crl` (issuer name and signature both match)."""
    try:
        return crl.issuer == ca_cert.subject and _signed_by(crl, crl.tbs_certlist_bytes, ca_cert)
    except PARSE_ERRORS:
        return False


def _signed_by(
    signed: x509.Certificate | x509.CertificateRevocationList, tbs: bytes, ca_cert: x509.Certificate
) -> bool:
    # An Ed25519 CA's signature is judged by the suite's rule, the one every signature on
    # the platform is judged by, so whether a certificate (hence its transactions) is valid
    # cannot depend on the OpenSSL build a node's `cryptography` happens to use.
    key = ca_cert.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        if signed.signature_algorithm_oid != SignatureAlgorithmOID.ED25519:
            return False
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return ED25519.verify(raw, tbs, signed.signature)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False  # we only ever issue certificates and CRLs with the suites' key types
    if isinstance(signed, x509.CertificateRevocationList):
        return signed.is_signature_valid(key)
    try:
        signed.verify_directly_issued_by(ca_cert)
    except InvalidSignature:
        return False
    return True
