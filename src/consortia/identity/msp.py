"""The membership service: who may act on a channel, proven by X.509 certificates.

`MSP.validate` turns a DER certificate into an `Identity` (the `Caller` that contracts see,
plus the raw public key the signature suites verify with). Parsing and the CA signature
check are expensive (tens of microseconds), so their result — success or the typed
rejection — is cached by sha256(cert) in a bounded LRU. The per-call work left is a dict
lookup, two integer time comparisons and a revocation-set lookup, because validity depends
on the block time and revocation on the channel's current CRLs, neither of which is cached.

Times are integer milliseconds since the epoch (the block timestamp), never the host clock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from consortia.crypto import InvalidKey, public_key_of, sha256, suite_by_name
from consortia.identity.certs import (
    ATTRIBUTES_OID,
    PARSE_ERRORS,
    cert_issued_by,
    crl_signed_by,
    decode_attributes,
    name_values,
    to_ms,
)
from consortia.identity.errors import (
    BadCertificate,
    BadConfig,
    BadRole,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    IdentityError,
    UnknownIssuer,
    WrongSuite,
)
from consortia.identity.layout import ROLE_NODE, ROLES
from consortia.types import Caller, ChannelConfig

# IdentityError is re-exported: callers catch it from here alongside MSP.
__all__ = ["CACHE_ENTRIES_MAX", "CERT_BYTES_MAX", "MSP", "BadSignature", "Identity", "IdentityError"]

CERT_BYTES_MAX = 16 * 1024
CACHE_ENTRIES_MAX = 100_000
_NO_SERIALS: frozenset[int] = frozenset()


class BadSignature(IdentityError):
    code = "bad_signature"


@dataclass(frozen=True)
class Identity:
    """A validated certificate: who it is, and the key its signatures verify with."""

    caller: Caller
    suite: str
    public_key: bytes  # raw, as the suite's verify() takes it


@dataclass(frozen=True)
class _Authority:
    org: str
    cert: x509.Certificate
    fingerprint: bytes
    not_before_ms: int
    not_after_ms: int


@dataclass(frozen=True, slots=True)
class _Accepted:
    identity: Identity
    not_before_ms: int  # the tighter of the certificate's and its CA's windows
    not_after_ms: int
    authority: bytes  # the issuing CA's fingerprint: serials are unique per issuer
    serial: int


@dataclass(frozen=True, slots=True)
class _Rejected:
    error: type[IdentityError]
    message: str


class _LRU:
    """A bounded map evicting the least recently used entry; safe under threads."""

    def __init__(self, entries_max: int) -> None:
        self._entries_max = max(1, entries_max)
        self._data: OrderedDict[bytes, _Accepted | _Rejected] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> _Accepted | _Rejected | None:
        entry = self._data.get(key)
        if entry is not None:
            try:
                self._data.move_to_end(key)  # atomic under the GIL; a racing eviction is harmless
            except KeyError:
                pass
        return entry

    def put(self, key: bytes, entry: _Accepted | _Rejected) -> None:
        with self._lock:
            self._data[key] = entry
            while len(self._data) > self._entries_max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def entries_max(self) -> int:
        return self._entries_max


def _ms_text(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).isoformat()


def _load_der(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except PARSE_ERRORS as exc:
        raise BadConfig(f"{what}: not a DER certificate: {exc}") from exc


class MSP:
    """Validates identities against one channel configuration's CAs and CRLs."""

    def __init__(self, config: ChannelConfig, cache_entries_max: int = CACHE_ENTRIES_MAX) -> None:
        """Raises BadConfig for unparsable CA certificates or CRLs, a CA shared by two
        organisations, or a CRL not signed by one of its organisation's CAs."""
        self._config = config
        self._cache = _LRU(cache_entries_max)
        self._by_subject: dict[bytes, list[_Authority]] = {}
        self._revoked: dict[bytes, frozenset[int]] = {}
        self._tls_roots: list[bytes] = []
        owners: dict[bytes, str] = {}
        for org in config.orgs:
            authorities = [self._add_authority(org.name, der, owners) for der in org.ca_certs]
            for der in org.tls_ca_certs:
                _load_der(der, f"TLS CA of {org.name!r}")
                self._tls_roots.append(der)
            for der in org.crls:
                self._add_crl(org.name, der, authorities)

    def _add_authority(self, org: str, der: bytes, owners: dict[bytes, str]) -> _Authority:
        cert = _load_der(der, f"CA of {org!r}")
        fingerprint = sha256(der)
        if owners.setdefault(fingerprint, org) != org:
            raise BadConfig(f"one CA is listed by both {owners[fingerprint]!r} and {org!r}")
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        except PARSE_ERRORS as exc:
            raise BadConfig(f"CA of {org!r}: bad extensions: {exc}") from exc
        if not is_ca:
            raise BadConfig(f"CA certificate of {org!r} is not marked as a CA")
        authority = _Authority(
            org, cert, fingerprint, to_ms(cert.not_valid_before_utc), to_ms(cert.not_valid_after_utc)
        )
        self._by_subject.setdefault(cert.subject.public_bytes(), []).append(authority)
        return authority

    def _add_crl(self, org: str, der: bytes, authorities: list[_Authority]) -> None:
        try:
            crl = x509.load_der_x509_crl(der)
            serials = frozenset(entry.serial_number for entry in crl)
        except PARSE_ERRORS as exc:
            raise BadConfig(f"CRL of {org!r} is malformed: {exc}") from exc
        for authority in authorities:
            if crl_signed_by(crl, authority.cert):
                previous = self._revoked.get(authority.fingerprint, _NO_SERIALS)
                self._revoked[authority.fingerprint] = previous | serials
                return
        raise BadConfig(f"a CRL of {org!r} is not signed by any of its CAs")

    @property
    def config(self) -> ChannelConfig:
        return self._config

    def with_config(self, config: ChannelConfig) -> MSP:
        """An MSP for a changed configuration, keeping the parse cache when only CRLs or
        other non-CA fields changed (cached results depend only on the CAs and the suite).

        Raises BadConfig as the constructor does.
        """
        msp = MSP(config, self._cache.entries_max)

        def cas(c: ChannelConfig) -> list[tuple[str, list[bytes]]]:
            return [(org.name, org.ca_certs) for org in c.orgs]

        if config.suite == self._config.suite and cas(config) == cas(self._config):
            msp._cache = self._cache
        return msp

    def validate(self, cert_der: bytes, at_ms: int) -> Identity:
        """The identity `cert_der` proves at time `at_ms` (ms since the epoch).

        Raises BadCertificate, UnknownIssuer, BadRole, WrongSuite, CertificateNotYetValid,
        CertificateExpired, CertificateRevoked (all IdentityError, each with a `code`).
        """
        key = sha256(cert_der)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._examine(cert_der, key)
            self._cache.put(key, entry)
        if isinstance(entry, _Rejected):
            raise entry.error(entry.message)
        if at_ms < entry.not_before_ms:
            raise CertificateNotYetValid(f"certificate not valid before {_ms_text(entry.not_before_ms)}")
        if at_ms > entry.not_after_ms:
            raise CertificateExpired(f"certificate expired at {_ms_text(entry.not_after_ms)}")
        if entry.serial in self._revoked.get(entry.authority, _NO_SERIALS):
            raise CertificateRevoked(f"certificate serial {entry.serial:x} is revoked")
        return entry.identity

    def verify_block_signer(self, cert_der: bytes, at_ms: int) -> Identity:
        """As validate, and raises BadRole unless the certificate is a node's."""
        identity = self.validate(cert_der, at_ms)
        if identity.caller.role != ROLE_NODE:
            raise BadRole(f"block signer must have role {ROLE_NODE!r}, not {identity.caller.role!r}")
        return identity

    def verify(self, cert_der: bytes, message: bytes, signature: bytes, at_ms: int) -> Identity:
        """Validate the certificate and check its key signed `message`.

        Raises what validate raises, and BadSignature.
        """
        identity = self.validate(cert_der, at_ms)
        if not suite_by_name(identity.suite).verify(identity.public_key, message, signature):
            raise BadSignature(f"signature by {identity.caller.subject!r} does not verify")
        return identity

    def tls_trust_roots(self) -> list[bytes]:
        """Every organisation's TLS CA certificates (DER), in configuration order."""
        return list(self._tls_roots)

    def cached_entries(self) -> int:
        return len(self._cache)

    def _examine(self, cert_der: bytes, key: bytes) -> _Accepted | _Rejected:
        try:
            return self._parse_and_chain(cert_der, key)
        except IdentityError as exc:
            return _Rejected(type(exc), str(exc))

    def _parse_and_chain(self, cert_der: bytes, key: bytes) -> _Accepted:
        if len(cert_der) > CERT_BYTES_MAX:
            raise BadCertificate(f"certificate larger than {CERT_BYTES_MAX} bytes")
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            issuer = cert.issuer.public_bytes()
            subject = cert.subject
            extensions = cert.extensions
            serial = cert.serial_number
            not_before, not_after = to_ms(cert.not_valid_before_utc), to_ms(cert.not_valid_after_utc)
        except PARSE_ERRORS as exc:
            raise BadCertificate(f"malformed certificate: {exc}") from exc
        if serial <= 0:
            raise BadCertificate("certificate serial number must be positive (RFC 5280)")
        # DER lets the signature BIT STRING claim unused bits that parsers ignore; refusing
        # them keeps one certificate to one byte string, hence one certificate hash.
        signature = cert.signature
        if not cert_der.endswith(signature) or cert_der[-len(signature) - 1] != 0:
            raise BadCertificate("non-canonical signature encoding")
        authority = self._issuer_of(cert, issuer)
        role = self._role_of(subject, extensions)
        common_names = name_values(subject, NameOID.COMMON_NAME)
        if len(common_names) != 1:
            raise BadCertificate("certificate subject must have exactly one common name")
        try:
            suite, public_key = public_key_of(cert.public_key())
        except (InvalidKey, ValueError, UnsupportedAlgorithm) as exc:
            raise WrongSuite(f"unsupported certificate key: {exc}") from exc
        if suite != self._config.suite:
            raise WrongSuite(f"certificate key is {suite}, the channel uses {self._config.suite}")
        attributes: dict[str, str] = {}
        try:
            extension = extensions.get_extension_for_oid(ATTRIBUTES_OID).value
        except x509.ExtensionNotFound:
            pass
        else:
            if isinstance(extension, x509.UnrecognizedExtension):
                attributes = decode_attributes(extension.value)
        caller = Caller(authority.org, role, common_names[0], key, attributes)
        return _Accepted(
            Identity(caller, suite, public_key),
            max(not_before, authority.not_before_ms),
            min(not_after, authority.not_after_ms),
            authority.fingerprint,
            serial,
        )

    def _issuer_of(self, cert: x509.Certificate, issuer: bytes) -> _Authority:
        for authority in self._by_subject.get(issuer, ()):
            if cert_issued_by(cert, authority.cert):
                return authority
        raise UnknownIssuer("certificate is not signed by any CA of the channel")

    @staticmethod
    def _role_of(subject: x509.Name, extensions: x509.Extensions) -> str:
        try:
            constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
            if constraints.ca:
                raise BadRole("a CA certificate cannot act as an identity")
        except x509.ExtensionNotFound:
            pass
        roles = [ou for ou in name_values(subject, NameOID.ORGANIZATIONAL_UNIT_NAME) if ou in ROLES]
        if len(roles) != 1:
            raise BadRole(f"certificate must carry exactly one role OU of {', '.join(ROLES)}")
        return roles[0]
