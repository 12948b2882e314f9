"""Certificate revocation: add a certificate's serial to its organisation's CRL.

A revocation takes effect on a channel only once the new CRL reaches the channel
configuration (genesis, or a config update carrying the org's new `crls`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from consortia.identity import layout
from consortia.identity.certs import (
    PARSE_ERRORS,
    build_crl,
    cert_issued_by,
    crl_signed_by,
    load_certificate,
    utc_now,
)
from consortia.identity.cryptogen import load_org_ca
from consortia.identity.errors import BadCrl, UnknownIssuer


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER bytes; raises BadCrl."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except PARSE_ERRORS as exc:
        raise BadCrl(f"not a CRL: {exc}") from exc


def load_crl_der(path: Path) -> bytes:
    """The DER bytes of the CRL at `path` (PEM or DER); raises IdentityNotFound, BadCrl."""
    return parse_crl(layout.read_bytes(path)).public_bytes(Encoding.DER)


def revoked_serials(crl: x509.CertificateRevocationList) -> dict[int, datetime]:
    return {entry.serial_number: entry.revocation_date_utc for entry in crl}


def revoke(crypto_dir: Path, org: str, cert_path: Path, now: datetime | None = None) -> Path:
    """Add the certificate at `cert_path` to `org`'s CRL, re-sign it and write crl.pem.

    Revoking an already revoked certificate changes nothing. Returns the CRL's path.
    Raises IdentityNotFound, BadCertificate, BadKey, BadCrl (existing CRL malformed or
    not signed by the org CA) and UnknownIssuer (the certificate is not from the org's
    identity CA).
    """
    ca_cert, ca_key = load_org_ca(crypto_dir, org)
    cert = load_certificate(layout.read_bytes(cert_path))
    if not cert_issued_by(cert, ca_cert):
        raise UnknownIssuer(f"{cert_path} was not issued by the identity CA of {org!r}")
    path = layout.crl_path(crypto_dir, org)
    crl = parse_crl(layout.read_bytes(path))
    if not crl_signed_by(crl, ca_cert):
        raise BadCrl(f"{path} is not signed by the identity CA of {org!r}")
    revoked = revoked_serials(crl)
    if cert.serial_number in revoked:
        return path
    moment = now if now is not None else utc_now()
    revoked[cert.serial_number] = moment
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        number = 1
    last_update = max(moment, crl.last_update_utc)  # CRLs never go back in time
    new = build_crl(ca_cert, ca_key, revoked, number=number, last_update=last_update)
    layout.replace_file(path, new.public_bytes(Encoding.PEM))
    return path
