"""Inventory of a crypto directory's certificates and how long each stays valid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.x509.oid import NameOID

from consortia.identity import layout
from consortia.identity.certs import load_certificate, name_values, utc_now
from consortia.identity.errors import BadArgument, IdentityNotFound

STATUS_OK = "ok"
STATUS_EXPIRING = "expiring"
STATUS_EXPIRED = "expired"

# File name -> role shown, for certificates whose role is not in their subject.
_FIXED_ROLES = {"ca.crt": "ca", "tlsca.crt": "tlsca", layout.TLS_CERT: "tls"}
_CERT_FILES = (*_FIXED_ROLES, layout.SIGNCERT)


@dataclass(frozen=True)
class CertStatus:
    path: Path
    subject: str
    org: str
    role: str  # "ca" | "tlsca" | "tls" | "node" | "admin" | "client"
    not_after: datetime
    days_left: int  # whole days until expiry; negative once expired
    status: str  # "ok" | "expiring" | "expired"


def list_certificates(crypto_dir: Path, now: datetime | None = None, warn_days: int = 30) -> list[CertStatus]:
    """Every certificate under crypto_dir/orgs, sorted by path.

    A certificate is "expired" once `now` is past notAfter and "expiring" when it expires
    within `warn_days`. Raises IdentityNotFound (no orgs directory), BadArgument
    (negative warn_days), BadCertificate (an unreadable certificate file).
    """
    if warn_days < 0:
        raise BadArgument("warn_days must be >= 0")
    root = layout.orgs_dir(crypto_dir)
    if not root.is_dir():
        raise IdentityNotFound(f"no consortium at {crypto_dir} ({root} is missing)")
    moment = now if now is not None else utc_now()
    paths = sorted(p for name in _CERT_FILES for p in root.rglob(name) if p.is_file())
    return [_status(path, moment, warn_days) for path in paths]


def _status(path: Path, now: datetime, warn_days: int) -> CertStatus:
    cert = load_certificate(layout.read_bytes(path))
    not_after = cert.not_valid_after_utc
    left = not_after - now
    if left < timedelta(0):
        status = STATUS_EXPIRED
    elif left <= timedelta(days=warn_days):
        status = STATUS_EXPIRING
    else:
        status = STATUS_OK
    roles = name_values(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    role = _FIXED_ROLES.get(path.name) or (roles[0] if roles else "")
    orgs = name_values(cert.subject, NameOID.ORGANIZATION_NAME)
    return CertStatus(
        path=path,
        subject=cert.subject.rfc4514_string(),
        org=orgs[0] if orgs else "",
        role=role,
        not_after=not_after,
        days_left=left // timedelta(days=1),
        status=status,
    )
