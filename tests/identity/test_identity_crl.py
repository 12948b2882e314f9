"""Revocation lists: revoke is idempotent, re-signed, numbered, and only for the org's own certs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from consortia.identity import (
    BadCrl,
    IdentityNotFound,
    UnknownIssuer,
    generate_consortium,
    load_crl_der,
    revoke,
)
from consortia.identity.certs import crl_signed_by, load_certificate
from consortia.identity.cryptogen import load_org_ca


def _crl(path: Path) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(load_crl_der(path))


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_revoke_adds_serial_resigns_and_bumps_number(tmp_path: Path, suite: str) -> None:
    generate_consortium(tmp_path, ["org1"], suite=suite, clients=2)
    users = tmp_path / "orgs" / "org1" / "users"
    first, second = users / "client0@org1" / "signcert.pem", users / "client1@org1" / "signcert.pem"
    path = revoke(tmp_path, "org1", first)
    assert path == tmp_path / "orgs" / "org1" / "crl.pem"
    crl = _crl(path)
    assert [e.serial_number for e in crl] == [load_certificate(first.read_bytes()).serial_number]
    assert _number(crl) == 2
    assert crl_signed_by(crl, load_org_ca(tmp_path, "org1")[0])
    revoke(tmp_path, "org1", second)
    crl = _crl(path)
    assert len(crl) == 2 and _number(crl) == 3


def test_revoke_twice_changes_nothing(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1"])
    cert = tmp_path / "orgs" / "org1" / "nodes" / "peer0.org1" / "signcert.pem"
    path = revoke(tmp_path, "org1", cert)
    before = path.read_bytes()
    assert revoke(tmp_path, "org1", cert) == path
    assert path.read_bytes() == before


def test_revoke_accepts_der_certificates(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1"])
    pem = tmp_path / "orgs" / "org1" / "users" / "admin@org1" / "signcert.pem"
    der = tmp_path / "admin.der"
    der.write_bytes(load_certificate(pem.read_bytes()).public_bytes(Encoding.DER))
    assert len(_crl(revoke(tmp_path, "org1", der))) == 1


def test_foreign_certificates_cannot_be_revoked(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1", "org2"])
    org_dir = tmp_path / "orgs"
    with pytest.raises(UnknownIssuer):
        revoke(tmp_path, "org1", org_dir / "org2" / "users" / "admin@org2" / "signcert.pem")
    with pytest.raises(UnknownIssuer):  # TLS certificates come from the TLS CA
        revoke(tmp_path, "org1", org_dir / "org1" / "nodes" / "peer0.org1" / "tls.crt")
    assert len(_crl(org_dir / "org1" / "crl.pem")) == 0


def test_bad_or_foreign_crl_is_refused(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1", "org2"])
    org_dir = tmp_path / "orgs"
    cert = org_dir / "org1" / "users" / "admin@org1" / "signcert.pem"
    (org_dir / "org1" / "crl.pem").write_bytes((org_dir / "org2" / "crl.pem").read_bytes())
    with pytest.raises(BadCrl):
        revoke(tmp_path, "org1", cert)
    (org_dir / "org1" / "crl.pem").write_bytes(b"nonsense")
    with pytest.raises(BadCrl) as info:
        load_crl_der(org_dir / "org1" / "crl.pem")
    assert info.value.code == "bad_crl"
    with pytest.raises(IdentityNotFound):
        load_crl_der(org_dir / "missing.pem")
