"""Where crypto material lives on disk, how its names look, and how files are written.

    DIR/orgs/<org>/ca/{ca.crt,ca.key}
    DIR/orgs/<org>/tlsca/{tlsca.crt,tlsca.key}
    DIR/orgs/<org>/crl.pem
    DIR/orgs/<org>/nodes/<node>/{signcert.pem,signkey.pem,tls.crt,tls.key}
    DIR/orgs/<org>/users/<user>/{signcert.pem,signkey.pem}
    DIR/orgs/<org>/users/client<i>@<org>/{eth.key,eth.address}   (see `identity.ethkeys`)

Every name that becomes a path component is validated first, so a name read from a
command line can never walk out of the crypto directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from consortia.identity.errors import BadArgument, BadOrgName, IdentityNotFound

ROLE_NODE = "node"
ROLE_ADMIN = "admin"
ROLE_CLIENT = "client"
ROLES = (ROLE_NODE, ROLE_ADMIN, ROLE_CLIENT)

ORG_CHARS_MAX = 32
IDENTITY_CHARS_MAX = 64
_ORG_RE = re.compile(r"[a-z0-9-]{1,32}")
_IDENTITY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.@_-]{0,63}")

SIGNCERT = "signcert.pem"
SIGNKEY = "signkey.pem"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"


def check_org_name(name: str) -> None:
    """Raises BadOrgName unless `name` is 1..32 of lowercase letters, digits and '-'."""
    if not _ORG_RE.fullmatch(name):
        raise BadOrgName(
            f"bad organisation name {name!r}: use 1..{ORG_CHARS_MAX} lowercase letters, digits or '-'"
        )


def check_org_names(names: list[str]) -> None:
    """Raises BadOrgName for an empty list, a bad name or a duplicate."""
    if not names:
        raise BadOrgName("at least one organisation is required")
    seen: set[str] = set()
    for name in names:
        check_org_name(name)
        if name in seen:
            raise BadOrgName(f"organisation {name!r} is listed twice")
        seen.add(name)


def check_identity_name(name: str) -> None:
    """Raises BadArgument unless `name` is a safe identity name such as 'client0@org1'."""
    if not _IDENTITY_RE.fullmatch(name) or ".." in name:
        raise BadArgument(
            f"bad identity name {name!r}: use 1..{IDENTITY_CHARS_MAX} of letters, digits, '.', '@', '_', '-'"
        )


def node_name(org: str, index: int) -> str:
    return f"peer{index}.{org}"


def admin_name(org: str) -> str:
    return f"admin@{org}"


def client_name(org: str, index: int) -> str:
    return f"client{index}@{org}"


def orgs_dir(root: Path) -> Path:
    return root / "orgs"


def org_dir(root: Path, org: str) -> Path:
    check_org_name(org)
    return orgs_dir(root) / org


def ca_cert_path(root: Path, org: str) -> Path:
    return org_dir(root, org) / "ca" / "ca.crt"


def ca_key_path(root: Path, org: str) -> Path:
    return org_dir(root, org) / "ca" / "ca.key"


def tlsca_cert_path(root: Path, org: str) -> Path:
    return org_dir(root, org) / "tlsca" / "tlsca.crt"


def tlsca_key_path(root: Path, org: str) -> Path:
    return org_dir(root, org) / "tlsca" / "tlsca.key"


def crl_path(root: Path, org: str) -> Path:
    return org_dir(root, org) / "crl.pem"


def node_dir(root: Path, org: str, name: str) -> Path:
    check_identity_name(name)
    return org_dir(root, org) / "nodes" / name


def user_dir(root: Path, org: str, name: str) -> Path:
    check_identity_name(name)
    return org_dir(root, org) / "users" / name


def require_org(root: Path, org: str) -> Path:
    """The org's directory; raises IdentityNotFound when it is missing, BadOrgName for a bad name."""
    path = org_dir(root, org)
    if not path.is_dir():
        raise IdentityNotFound(f"organisation {org!r} not found under {orgs_dir(root)}")
    return path


def read_bytes(path: Path) -> bytes:
    """Raises IdentityNotFound when the file is missing or unreadable."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityNotFound(f"cannot read {path}: {exc.strerror or exc}") from exc


def write_new(path: Path, data: bytes, *, private: bool = False) -> None:
    """Create `path` (never overwrite). Private files are born 0600, never briefly readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(path, 0o600)  # the umask may only remove bits; make the mode exact


def replace_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically: readers see the old or the new file, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
