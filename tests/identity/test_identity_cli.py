"""`consortia crypto` commands through typer's test runner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from consortia.cli.crypto_cmd import crypto_app
from consortia.identity import add_identity, load_crl_der

runner = CliRunner()


def _generate(out: Path, *extra: str) -> None:
    result = runner.invoke(crypto_app, ["generate", "--orgs", "org1,org2", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output


def test_generate_prints_summary_and_writes_layout(tmp_path: Path) -> None:
    result = runner.invoke(
        crypto_app, ["generate", "--orgs", "org1,org2,org3,org4", "--out", str(tmp_path), "--clients", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Generated 4 organisations" in result.output
    assert "client1@org4" in result.output
    assert (tmp_path / "orgs" / "org4" / "users" / "client1@org4" / "signkey.pem").is_file()


def test_generate_suite_and_force(tmp_path: Path) -> None:
    _generate(tmp_path, "--suite", "secp256k1")
    again = runner.invoke(crypto_app, ["generate", "--orgs", "org1", "--out", str(tmp_path)])
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert "Traceback" not in again.output
    _generate(tmp_path, "--force", "--suite", "p256")
    assert (
        "suite p256"
        in runner.invoke(
            crypto_app, ["generate", "--orgs", "x", "--out", str(tmp_path / "b"), "--suite", "p256"]
        ).output
    )


def test_generate_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    for args in (["--orgs", "Org1"], ["--orgs", "org1", "--suite", "rsa"], ["--orgs", "org1", "--days", "0"]):
        result = runner.invoke(crypto_app, ["generate", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2
        assert result.output.strip().startswith("error:")
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "x" / "orgs").exists()


def test_check_json_lists_all_and_exits_0(tmp_path: Path) -> None:
    _generate(tmp_path)
    result = runner.invoke(crypto_app, ["check", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 2 * 6
    assert {r["status"] for r in rows} == {"ok"}
    assert {"path", "subject", "org", "role", "not_after", "days_left", "status"} == set(rows[0])


def test_check_warns_for_a_certificate_expiring_in_10_days(tmp_path: Path) -> None:
    _generate(tmp_path)
    add_identity(tmp_path, "org1", "temp@org1", days=10)
    result = runner.invoke(crypto_app, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "temp@org1" in warnings[0] and "expires in" in warnings[0]
    quiet = runner.invoke(crypto_app, ["check", str(tmp_path), "--warn-days", "5"])
    assert "warning:" not in quiet.output


def test_check_exits_1_when_a_certificate_expired(tmp_path: Path) -> None:
    _generate(tmp_path)
    add_identity(tmp_path, "org2", "gone@org2", now=datetime.now(UTC) - timedelta(days=30), days=2)
    table = runner.invoke(crypto_app, ["check", str(tmp_path)])
    assert table.exit_code == 1
    assert any(line.startswith("expired:") and "gone@org2" in line for line in table.output.splitlines())
    as_json = runner.invoke(crypto_app, ["check", str(tmp_path), "--json"])
    assert as_json.exit_code == 1
    assert [r["role"] for r in json.loads(as_json.output) if r["status"] == "expired"] == ["client"]


def test_check_missing_directory_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(crypto_app, ["check", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output.startswith("error:")


def test_revoke_updates_the_crl(tmp_path: Path) -> None:
    _generate(tmp_path)
    cert = tmp_path / "orgs" / "org1" / "users" / "client0@org1" / "signcert.pem"
    crl = tmp_path / "orgs" / "org1" / "crl.pem"
    before = load_crl_der(crl)
    result = runner.invoke(
        crypto_app, ["revoke", "--dir", str(tmp_path), "--org", "org1", "--cert", str(cert)]
    )
    assert result.exit_code == 0, result.output
    assert "Revoked" in result.output
    assert load_crl_der(crl) != before
    wrong = runner.invoke(
        crypto_app, ["revoke", "--dir", str(tmp_path), "--org", "org2", "--cert", str(cert)]
    )
    assert wrong.exit_code == 2
    assert "not issued by" in wrong.output
    missing = runner.invoke(
        crypto_app, ["revoke", "--dir", str(tmp_path), "--org", "org1", "--cert", str(tmp_path / "none.pem")]
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output
