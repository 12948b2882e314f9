"""Generate a consortium's crypto material: per organisation CAs, identities, TLS and a CRL.

Directory layout written under `out` (private keys are PKCS#8 PEM, mode 0600;
certificates and CRLs are PEM):

    out/orgs/<org>/ca/ca.crt, ca.key             identity CA (key of the chosen suite)
    out/orgs/<org>/tlsca/tlsca.crt, tlsca.key    TLS CA (always ECDSA P-256)
    out/orgs/<org>/crl.pem                       the org's CRL, signed by its identity CA
    out/orgs/<org>/nodes/peer<i>.<org>/          signcert.pem, signkey.pem (OU=node),
                                                 tls.crt, tls.key (server + client auth)
    out/orgs/<org>/users/admin@<org>/            signcert.pem, signkey.pem (OU=admin)
    out/orgs/<org>/users/client<i>@<org>/        signcert.pem, signkey.pem (OU=client),
                                                 eth.key (0600), eth.address: an Ethereum
                                                 account (see `identity.ethkeys`)

The tree is generated in a temporary directory beside `out/orgs` and renamed into place,
so a failure never leaves half a consortium behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from consortia.crypto import P256, SUITES, public_key_of, suite_by_name
from consortia.identity import layout
from consortia.identity.certs import (
    CryptoPrivateKey,
    build_ca,
    build_crl,
    cert_pem,
    issue_identity,
    issue_tls,
    key_pem,
    load_certificate,
    utc_now,
)
from consortia.identity.errors import BadArgument, BadKey, ConsortiumExists, IdentityNotFound
from consortia.identity.ethkeys import write_eth_key
from consortia.identity.wallet import private_key_from_pem

# Certificates start a little in the past so nodes whose clocks lag slightly accept them.
CLOCK_SKEW = timedelta(minutes=5)
CLIENTS_MAX = 1000
NODES_MAX = 100


@dataclass(frozen=True)
class OrgLayout:
    name: str
    dir: Path
    ca_cert: Path
    ca_key: Path
    tlsca_cert: Path
    tlsca_key: Path
    crl: Path
    nodes: tuple[str, ...]
    users: tuple[str, ...]


@dataclass(frozen=True)
class ConsortiumLayout:
    root: Path
    suite: str
    orgs: tuple[OrgLayout, ...]

    def org(self, name: str) -> OrgLayout:
        """Raises IdentityNotFound for an organisation not in the consortium."""
        for org in self.orgs:
            if org.name == name:
                return org
        raise IdentityNotFound(f"organisation {name!r} not in the consortium")


def _check_args(suite: str, days: int, ca_days: int, clients: int, nodes: int) -> None:
    if suite not in SUITES:
        raise BadArgument(f"unknown suite {suite!r}; known: {', '.join(sorted(SUITES))}")
    if days < 1 or ca_days < 1:
        raise BadArgument("validity periods must be at least one day")
    if not 0 <= clients <= CLIENTS_MAX:
        raise BadArgument(f"clients must be 0..{CLIENTS_MAX}")
    if not 1 <= nodes <= NODES_MAX:
        raise BadArgument(f"nodes must be 1..{NODES_MAX}")


def generate_consortium(
    out: Path,
    orgs: list[str],
    suite: str = "ed25519",
    days: int = 365,
    ca_days: int = 3650,
    clients: int = 1,
    nodes: int = 1,
    now: datetime | None = None,
    *,
    attributes: Mapping[str, Mapping[str, str]] | None = None,
    force: bool = False,
) -> ConsortiumLayout:
    """Write a fresh consortium under `out` and describe what was written.

    `attributes` maps an identity name (e.g. 'client0@org1') to certificate attributes.
    `now` fixes the issue time (tests use it to make expired or not-yet-valid material).
    Raises BadOrgName, BadArgument, or ConsortiumExists when `out/orgs` exists and not `force`.
    """
    layout.check_org_names(orgs)
    _check_args(suite, days, ca_days, clients, nodes)
    attributes = attributes or {}
    final = layout.orgs_dir(out)
    if final.exists() and not force:
        raise ConsortiumExists(f"{final} already exists (use force to replace it)")
    start = (now if now is not None else utc_now()) - CLOCK_SKEW
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".orgs-", dir=out))
    try:
        described = [
            _generate_org(staging, org, suite, start, days, ca_days, clients, nodes, attributes)
            for org in orgs
        ]
        if final.exists():
            final.rename(staging / "old")  # removed with the staging directory below
        layout.orgs_dir(staging).rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ConsortiumLayout(out, suite, tuple(_org_layout(out, *d) for d in described))


def _org_layout(root: Path, org: str, node_names: list[str], user_names: list[str]) -> OrgLayout:
    return OrgLayout(
        name=org,
        dir=layout.org_dir(root, org),
        ca_cert=layout.ca_cert_path(root, org),
        ca_key=layout.ca_key_path(root, org),
        tlsca_cert=layout.tlsca_cert_path(root, org),
        tlsca_key=layout.tlsca_key_path(root, org),
        crl=layout.crl_path(root, org),
        nodes=tuple(node_names),
        users=tuple(user_names),
    )


@dataclass(frozen=True)
class _Issuer:
    cert: x509.Certificate
    key: CryptoPrivateKey


def _generate_org(
    root: Path,
    org: str,
    suite: str,
    start: datetime,
    days: int,
    ca_days: int,
    clients: int,
    nodes: int,
    attributes: Mapping[str, Mapping[str, str]],
) -> tuple[str, list[str], list[str]]:
    ca_end, leaf_end = start + timedelta(days=ca_days), start + timedelta(days=days)
    ca_key = suite_by_name(suite).generate().to_cryptography()
    ca = _Issuer(build_ca(ca_key, org, f"ca.{org}", start, ca_end), ca_key)
    tls_key = P256.generate().to_cryptography()
    tlsca = _Issuer(build_ca(tls_key, org, f"tlsca.{org}", start, ca_end), tls_key)
    layout.write_new(layout.ca_cert_path(root, org), cert_pem(ca.cert))
    layout.write_new(layout.ca_key_path(root, org), key_pem(ca.key), private=True)
    layout.write_new(layout.tlsca_cert_path(root, org), cert_pem(tlsca.cert))
    layout.write_new(layout.tlsca_key_path(root, org), key_pem(tlsca.key), private=True)
    crl = build_crl(ca.cert, ca.key, {}, number=1, last_update=start)
    layout.write_new(layout.crl_path(root, org), crl.public_bytes(Encoding.PEM))

    node_names = [layout.node_name(org, i) for i in range(nodes)]
    for name in node_names:
        _write_node(root, org, name, ca, tlsca, start, leaf_end, attributes.get(name))
    user_names = [layout.admin_name(org)] + [layout.client_name(org, i) for i in range(clients)]
    for name in user_names:
        role = layout.ROLE_ADMIN if name == layout.admin_name(org) else layout.ROLE_CLIENT
        _write_user(root, org, name, role, ca, start, leaf_end, attributes.get(name))
    return org, node_names, user_names


def _suite_of_ca(ca: _Issuer) -> str:
    return public_key_of(ca.key.public_key())[0]


def _write_signing(
    directory: Path,
    org: str,
    name: str,
    role: str,
    ca: _Issuer,
    start: datetime,
    end: datetime,
    attributes: Mapping[str, str] | None,
) -> None:
    key = suite_by_name(_suite_of_ca(ca)).generate().to_cryptography()
    cert = issue_identity(
        ca.cert,
        ca.key,
        org=org,
        name=name,
        role=role,
        public_key=key.public_key(),
        not_before=start,
        not_after=end,
        attributes=attributes,
    )
    layout.write_new(directory / layout.SIGNCERT, cert_pem(cert))
    layout.write_new(directory / layout.SIGNKEY, key_pem(key), private=True)


def _write_node(
    root: Path,
    org: str,
    name: str,
    ca: _Issuer,
    tlsca: _Issuer,
    start: datetime,
    end: datetime,
    attributes: Mapping[str, str] | None,
) -> Path:
    directory = layout.node_dir(root, org, name)
    _write_signing(directory, org, name, layout.ROLE_NODE, ca, start, end, attributes)
    tls_key = P256.generate().to_cryptography()
    tls_cert = issue_tls(
        tlsca.cert,
        tlsca.key,
        org=org,
        name=name,
        public_key=tls_key.public_key(),
        not_before=start,
        not_after=end,
    )
    layout.write_new(directory / layout.TLS_CERT, cert_pem(tls_cert))
    layout.write_new(directory / layout.TLS_KEY, key_pem(tls_key), private=True)
    return directory


def _write_user(
    root: Path,
    org: str,
    name: str,
    role: str,
    ca: _Issuer,
    start: datetime,
    end: datetime,
    attributes: Mapping[str, str] | None,
) -> Path:
    directory = layout.user_dir(root, org, name)
    _write_signing(directory, org, name, role, ca, start, end, attributes)
    if role == layout.ROLE_CLIENT:
        write_eth_key(directory)
    return directory


def _load_issuer(cert_path: Path, key_path: Path) -> _Issuer:
    cert = load_certificate(layout.read_bytes(cert_path))
    key = private_key_from_pem(layout.read_bytes(key_path)).to_cryptography()
    if cert.public_key() != key.public_key():
        raise BadKey(f"{key_path} does not match {cert_path}")
    return _Issuer(cert, key)


def load_org_ca(crypto_dir: Path, org: str) -> tuple[x509.Certificate, CryptoPrivateKey]:
    """The org's identity CA certificate and key; raises IdentityNotFound, BadCertificate, BadKey."""
    layout.require_org(crypto_dir, org)
    issuer = _load_issuer(layout.ca_cert_path(crypto_dir, org), layout.ca_key_path(crypto_dir, org))
    return issuer.cert, issuer.key


def add_identity(
    crypto_dir: Path,
    org: str,
    name: str,
    role: str = layout.ROLE_CLIENT,
    *,
    attributes: Mapping[str, str] | None = None,
    days: int = 365,
    now: datetime | None = None,
) -> Path:
    """Issue one more identity in an existing consortium (a node also gets TLS material).

    Nodes go under nodes/<name>, admins and clients under users/<name>; the key is of the
    org CA's suite, and a client also gets an Ethereum key (eth.key, eth.address), which
    admins must put on the EVM allowlist with an evm_permit proposal. Returns the
    identity's directory. Raises BadArgument (role, days, name), IdentityNotFound,
    ConsortiumExists (the identity already exists), BadKey.
    """
    if role not in layout.ROLES:
        raise BadArgument(f"unknown role {role!r}; known: {', '.join(layout.ROLES)}")
    if days < 1:
        raise BadArgument("validity must be at least one day")
    ca = _Issuer(*load_org_ca(crypto_dir, org))
    is_node = role == layout.ROLE_NODE
    directory = (layout.node_dir if is_node else layout.user_dir)(crypto_dir, org, name)
    if directory.exists():
        raise ConsortiumExists(f"identity {name!r} already exists at {directory}")
    start = (now if now is not None else utc_now()) - CLOCK_SKEW
    end = start + timedelta(days=days)
    if is_node:
        tlsca = _load_issuer(layout.tlsca_cert_path(crypto_dir, org), layout.tlsca_key_path(crypto_dir, org))
        return _write_node(crypto_dir, org, name, ca, tlsca, start, end, attributes)
    return _write_user(crypto_dir, org, name, role, ca, start, end, attributes)
