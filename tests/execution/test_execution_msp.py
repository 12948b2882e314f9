"""The executor with the real MSP and certificates from cryptogen."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from execution_harness import Chain

from consortia.identity.cryptogen import generate_consortium
from consortia.identity.genesis import channel_config_from_crypto
from consortia.identity.msp import MSP
from consortia.identity.wallet import load_signing_identity
from consortia.types import STATUS_FAILED, STATUS_INVALID, STATUS_OK

ISSUED = datetime(2030, 1, 1, tzinfo=UTC)
ISSUED_MS = int(ISSUED.timestamp() * 1000)


@pytest.fixture(scope="module")
def crypto_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crypto")
    generate_consortium(out, ["org1", "org2", "org3"], days=30, now=ISSUED)
    return out


def test_real_certificates_issue_transfer_and_expire(crypto_dir: Path) -> None:
    config = channel_config_from_crypto(crypto_dir, ["org1", "org2", "org3"], "test-chain", "main")
    chain = Chain(config, validator_factory=MSP, start_ms=ISSUED_MS + 3_600_000)
    admin1 = load_signing_identity(crypto_dir, "org1", "admin@org1")
    client1 = load_signing_identity(crypto_dir, "org1", "client0@org1")
    alice = f"org1/{client1.name}"
    assert chain.ok(admin1.cert_der, "token", "issue", alice, 10) == 10
    assert chain.ok(client1.cert_der, "token", "transfer", "org2/client0@org2", 4) == 6
    receipt = chain.call(client1.cert_der, "token", "issue", alice, 1)
    assert (receipt.status, receipt.error) == (STATUS_FAILED, "ContractError: issue requires an org admin")
    assert chain.query("token", "balance", "org2/client0@org2") == 4

    later = Chain(config, validator_factory=MSP, start_ms=ISSUED_MS + 40 * 86_400_000)
    outcome = later.run(later.tx(admin1.cert_der, "token", "issue", alice, 1))
    assert outcome.receipts[0].status == STATUS_INVALID
    assert outcome.receipts[0].error == "invalid identity: certificate_expired"


def test_real_certificates_of_an_unknown_org_are_invalid(crypto_dir: Path) -> None:
    config = channel_config_from_crypto(crypto_dir, ["org1", "org2"], "test-chain", "main")
    chain = Chain(config, validator_factory=MSP, start_ms=ISSUED_MS + 3_600_000)
    stranger = load_signing_identity(crypto_dir, "org3", "admin@org3")
    receipt = chain.call(stranger.cert_der, "token", "issue", "org3/admin@org3", 1)
    assert (receipt.status, receipt.error) == (STATUS_INVALID, "invalid identity: unknown_issuer")
    assert receipt.status != STATUS_OK


def test_validator_membership_changes_through_config_proposals(crypto_dir: Path) -> None:
    """Adding and removing a consensus validator is a config transaction under the admin policy."""
    orgs = ["org1", "org2", "org3"]
    config = channel_config_from_crypto(crypto_dir, orgs, "test-chain", "main", engine="raft")
    chain = Chain(config, validator_factory=MSP, start_ms=ISSUED_MS + 3_600_000)
    admins = {o: load_signing_identity(crypto_dir, o, f"admin@{o}").cert_der for o in orgs}
    node2 = (crypto_dir / "orgs" / "org2" / "nodes" / "peer0.org2" / "signcert.pem").read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    node2_der = x509.load_pem_x509_certificate(node2).public_bytes(Encoding.DER)
    add = {
        "op": "add_validator",
        "name": "peer0.org2",
        "org": "org2",
        "cert": node2_der,
        "address": "h2:7051",
    }
    assert chain.ok(admins["org1"], "config", "propose", add) == 1
    assert chain.ok(admins["org3"], "config", "approve", 1) is True  # 2 of 3 orgs: applied
    assert [(v.name, v.org, v.address) for v in chain.config.consensus.validators] == [
        ("peer0.org2", "org2", "h2:7051")
    ]
    # A certificate listed under the wrong org, an admin's certificate, or a duplicate name is refused.
    wrong_org = dict(add, name="peer1", org="org1")
    assert "certificate belongs to 'org2'" in chain.call(admins["org1"], "config", "propose", wrong_org).error
    not_node = dict(add, name="peer2", cert=admins["org2"])
    assert "not a node certificate" in chain.call(admins["org1"], "config", "propose", not_node).error
    assert "already exists" in chain.call(admins["org1"], "config", "propose", add).error
    # The last validator cannot be removed; an unknown one is an error.
    last = {"op": "remove_validator", "name": "peer0.org2"}
    assert "last validator" in chain.call(admins["org1"], "config", "propose", last).error
    gone = {"op": "remove_validator", "name": "nobody"}
    assert "no validator" in chain.call(admins["org1"], "config", "propose", gone).error
