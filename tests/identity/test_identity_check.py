"""Certificate inventory: expiry status and days left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consortia.identity import (
    BadArgument,
    IdentityNotFound,
    add_identity,
    generate_consortium,
    list_certificates,
)


def test_lists_every_certificate_with_role_and_org(ed_dir: Path) -> None:
    statuses = list_certificates(ed_dir)
    # per org: ca, tlsca, node signcert + tls, admin, client0
    assert len(statuses) == 3 * 6
    assert [s.path for s in statuses] == sorted(s.path for s in statuses)
    roles = sorted(s.role for s in statuses if s.org == "org2")
    assert roles == ["admin", "ca", "client", "node", "tls", "tlsca"]
    assert all(s.status == "ok" and s.days_left >= 363 for s in statuses)
    node = next(s for s in statuses if s.role == "node" and s.org == "org1")
    assert "CN=peer0.org1" in node.subject and "OU=node" in node.subject


def test_expiring_within_warn_days_and_expired(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ["org1"])
    add_identity(tmp_path, "org1", "soon@org1", days=10)
    add_identity(tmp_path, "org1", "old@org1", now=datetime.now(UTC) - timedelta(days=3), days=1)
    by_name = {s.path.parent.name: s for s in list_certificates(tmp_path, warn_days=30)}
    assert by_name["soon@org1"].status == "expiring"
    assert 9 <= by_name["soon@org1"].days_left <= 10
    assert by_name["old@org1"].status == "expired"
    assert by_name["old@org1"].days_left < 0
    assert by_name["admin@org1"].status == "ok"
    assert list_certificates(tmp_path, warn_days=5)[0].status == "ok"
    statuses = list_certificates(tmp_path, warn_days=5)
    assert next(s for s in statuses if s.path.parent.name == "soon@org1").status == "ok"


def test_now_moves_the_horizon(ed_dir: Path) -> None:
    later = datetime.now(UTC) + timedelta(days=366)
    assert {s.role for s in list_certificates(ed_dir, now=later) if s.status == "expired"} == {
        "node",
        "tls",
        "admin",
        "client",
    }


def test_missing_directory_and_bad_warn_days(tmp_path: Path) -> None:
    with pytest.raises(IdentityNotFound):
        list_certificates(tmp_path)
    generate_consortium(tmp_path, ["org1"])
    with pytest.raises(BadArgument):
        list_certificates(tmp_path, warn_days=-1)
