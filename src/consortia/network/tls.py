"""Mutual TLS between nodes: TLS 1.3 only, both sides present certificates from a TLS CA
of the consortium.

TLS proves a peer holds a key certified by some organisation's TLS CA. Which node the
peer is comes afterwards, from the HELLO exchange (see `hello`), which binds the node's
identity certificate to this TLS certificate. Host names are not checked: peers are
identified by certificate, not by address, so a validator may move between hosts.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from consortia.crypto import sha256
from consortia.network.errors import BadNetworkConfig, HelloRefused
from consortia.types import ChannelConfig

_CERT_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)


@dataclass(frozen=True)
class TlsContexts:
    """A node's TLS setup: one context to accept with, one to dial with, and its own
    certificate (DER), whose fingerprint the node signs in its HELLO."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    cert_der: bytes

    @property
    def fingerprint(self) -> bytes:
        return sha256(self.cert_der)


def der_to_pem(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


def channel_tls_roots(config: ChannelConfig) -> list[bytes]:
    """Every organisation's TLS CA certificates (DER), in configuration order."""
    return [der for org in config.orgs for der in org.tls_ca_certs]


def _context(purpose: int, cert_file: Path, key_file: Path, cadata: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # identity comes from certificates (HELLO), not addresses
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=cadata)
    return ctx


def make_tls_contexts(cert_file: Path, key_file: Path, trust_roots: Sequence[bytes]) -> TlsContexts:
    """Server and client contexts for mutual TLS with the consortium's TLS CAs.

    `cert_file`/`key_file` are the node's PEM TLS certificate and key (cryptogen's
    tls.crt and tls.key); `trust_roots` the channel's TLS CA certificates as DER
    (`channel_tls_roots(config)` or `MSP.tls_trust_roots()`).
    Raises BadNetworkConfig for unreadable or mismatched files, or no trust roots.
    """
    if not trust_roots:
        raise BadNetworkConfig("no TLS CA certificates to trust")
    try:
        cert_der = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(Encoding.DER)
        cadata = "".join(der_to_pem(der) for der in trust_roots)
        server = _context(ssl.PROTOCOL_TLS_SERVER, cert_file, key_file, cadata)
        server.num_tickets = 0  # sessions are never resumed between nodes
        client = _context(ssl.PROTOCOL_TLS_CLIENT, cert_file, key_file, cadata)
    except (OSError, *_CERT_ERRORS) as exc:  # ssl.SSLError is an OSError
        raise BadNetworkConfig(f"unusable TLS material {cert_file}, {key_file}: {exc}") from exc
    return TlsContexts(server, client, cert_der)


class TlsAuthorities:
    """Which organisation's TLS CA issued a peer's TLS certificate.

    The TLS stack already checked the chain to *some* consortium TLS CA; this names the
    organisation, so HELLO can insist it matches the organisation of the node identity.
    Results are cached by certificate fingerprint (a handful of peers, reconnecting).
    """

    def __init__(self, config: ChannelConfig) -> None:
        """Raises BadNetworkConfig for an unparsable TLS CA certificate."""
        self._cas: list[tuple[str, x509.Certificate]] = []
        for org in config.orgs:
            for der in org.tls_ca_certs:
                try:
                    self._cas.append((org.name, x509.load_der_x509_certificate(der)))
                except _CERT_ERRORS as exc:
                    raise BadNetworkConfig(f"TLS CA of {org.name!r} is not a certificate: {exc}") from exc
        self._cache: dict[bytes, str] = {}

    def org_of(self, tls_cert_der: bytes) -> str:
        """The organisation whose TLS CA directly issued `tls_cert_der`.

        Raises HelloRefused when none did or the certificate does not parse.
        """
        key = sha256(tls_cert_der)
        org = self._cache.get(key)
        if org is not None:
            return org
        try:
            cert = x509.load_der_x509_certificate(tls_cert_der)
        except _CERT_ERRORS as exc:
            raise HelloRefused(f"peer TLS certificate does not parse: {exc}") from exc
        for name, ca in self._cas:
            if cert.issuer != ca.subject:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (*_CERT_ERRORS, InvalidSignature):
                continue
            if len(self._cache) < 4096:
                self._cache[key] = name
            return name
        raise HelloRefused("peer TLS certificate was not issued by any TLS CA of the channel")
