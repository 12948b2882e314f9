"""A node behind its REST API: the happy path, and every kind of bad input changing nothing."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec

from consortia.identity.cryptogen import generate_consortium
from consortia.identity.wallet import load_signing_identity
from consortia.ledger.proofs import StateProof, verify_state_proof
from consortia.sdk import verify_certificate
from consortia.types import CommitCertificate, Envelope, Header, decode, encode
from tests.node.conftest import ORGS, Harness, now_ms, run_node

YEAR_MS = 365 * 24 * 3600 * 1000


def test_issue_transfer_query_and_prove(crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        admin = h.who("org1", "admin@org1")
        alice = h.who("org1")
        bob_account = "org2/client0@org2"
        out = await h.invoke(admin, "token", "issue", "org1/client0@org1", 1000)
        assert out["receipt"]["status"] == "ok", out
        out = await h.invoke(alice, "token", "transfer", bob_account, 250)
        assert out["receipt"]["status"] == "ok", out
        assert [e["name"] for e in out["receipt"]["events"]] == ["Transferred"]
        resp = await h.query("token", "balance", bob_account)
        assert resp.status_code == 200 and resp.json()["result"] == 250
        resp = await h.query("token", "balance", "org1/client0@org1")
        assert resp.json()["result"] == 750
        # status by id, with the transaction and receipt
        resp = await h.http.get(f"/v1/channels/main/transactions/{out['tx_id']}")
        assert resp.json()["status"] == "committed" and resp.json()["transaction"]["method"] == "transfer"
        # a proof of the balance key, checked with pure functions against the certified header
        info = (await h.http.get("/v1/channels/main/info")).json()
        assert info["height"] >= 2
        from consortia.execution.keys import composite_key

        key = composite_key("balance", bob_account)
        from urllib.parse import quote

        resp = await h.http.get(
            f"/v1/channels/main/state/token/{quote(key, safe='')}", params={"proof": "true"}
        )
        st = resp.json()
        assert st["exists"]
        header = decode(base64.b64decode(st["header"]), Header)
        cert = decode(base64.b64decode(st["certificate"]), CommitCertificate)
        assert verify_certificate(h.node.config, header, cert) == ["org1"]
        proof = decode(base64.b64decode(st["proof"]), StateProof)
        skey, value = base64.b64decode(st["state_key"]), base64.b64decode(st["value"])
        assert verify_state_proof(header.state_root, skey, value, proof)
        assert not verify_state_proof(header.state_root, skey, value + b"\x00", proof)
        # absence is provable too
        missing = composite_key("balance", "org3/nobody")
        resp = await h.http.get(
            f"/v1/channels/main/state/token/{quote(missing, safe='')}", params={"proof": "true"}
        )
        st = resp.json()
        assert not st["exists"]
        proof = decode(base64.b64decode(st["proof"]), StateProof)
        assert verify_state_proof(header.state_root, base64.b64decode(st["state_key"]), None, proof)
        # history shows both versions of the sender's balance
        akey = composite_key("balance", "org1/client0@org1")
        hist = (await h.http.get(f"/v1/channels/main/history/token/{quote(akey, safe='')}")).json()
        assert [v["value"] for v in hist["versions"]][:2] in ([1000, 750], [750, 1000])
        # blocks, metrics, OpenAPI
        blk = (await h.http.get("/v1/channels/main/blocks/1")).json()
        assert blk["header"]["height"] == 1 and blk["transactions"][0]["method"] == "issue"
        assert "consortia_height" in (await h.http.get("/metrics")).text
        assert "/v1/channels/{channel}/transactions" in (await h.http.get("/openapi.json")).json()["paths"]

    run_node(crypto_dir, tmp_path, body)


def test_bad_transactions_are_refused_and_change_nothing(crypto_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_consortium(other, ["org1"])
    stranger = load_signing_identity(other, "org1", "client0@org1")

    async def body(h: Harness) -> None:
        alice = h.who("org1")
        root, height = h.state_root(), h.node.ledger.height

        async def refused(raw: bytes, status: int, code: str) -> None:
            resp = await h.submit(raw)
            assert resp.status_code == status, resp.text
            assert resp.json()["error"]["code"] == code, resp.text

        await refused(b"\x00garbage", 400, "malformed")
        good = h.sign(alice, "token", "transfer", "org2/x", 1)
        env = decode(good.raw, Envelope)
        await refused(encode(Envelope(env.payload, bytes(64))), 401, "bad_signature")
        await refused(encode(Envelope(env.payload + b"\x00", env.signature)), 400, "malformed")
        await refused(
            h.sign(alice, "token", "transfer", "org2/x", 1, chain_id="other-chain").raw, 400, "wrong_chain"
        )
        await refused(
            h.sign(alice, "token", "transfer", "org2/x", 1, channel="other").raw, 400, "wrong_channel"
        )
        await refused(h.sign(stranger, "token", "transfer", "org2/x", 1).raw, 403, "unknown_issuer")
        await refused(h.sign(alice, "token", "transfer", "org2/x", 1.5).raw, 400, "malformed")
        # wrong channel in the path, oversized body, unknown query fields
        resp = await h.http.post("/v1/channels/nope/transactions", content=good.raw)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_channel"
        resp = await h.http.post("/v1/channels/main/transactions", content=b"x" * (5 << 20))
        assert resp.status_code == 413
        resp = await h.http.post(
            "/v1/channels/main/query",
            json={"contract": "token", "method": "balance", "args": [], "surprise": 1},
        )
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed"
        resp = await h.query("nosuch", "x")
        assert resp.status_code == 404
        assert h.state_root() == root and h.node.ledger.height == height and len(h.node.mempool) == 0
        # a replay of a committed transaction
        issue = h.sign(h.who("org1", "admin@org1"), "token", "issue", "org1/client0@org1", 5)
        assert (await h.submit(issue.raw)).json()["status"] == "committed"
        await refused(issue.raw, 409, "duplicate_transaction")

    run_node(crypto_dir, tmp_path / "n", body)


def test_certificate_validity_is_checked_against_the_clock(crypto_dir: Path, tmp_path: Path) -> None:
    for offset, code in ((2 * YEAR_MS, "certificate_expired"), (-2 * YEAR_MS, "certificate_not_yet_valid")):

        async def body(h: Harness, code: str = code) -> None:
            resp = await h.submit(h.sign(h.who("org2"), "token", "balance", "x").raw)
            assert resp.status_code == 403 and resp.json()["error"]["code"] == code

        run_node(crypto_dir, tmp_path / code, body, clock_ms=lambda offset=offset: now_ms() + offset)


def test_revoked_certificate_is_refused(tmp_path: Path) -> None:
    from consortia.identity.crl import revoke

    crypto = tmp_path / "crypto"
    generate_consortium(crypto, ORGS)
    victim = crypto / "orgs" / "org2" / "users" / "client0@org2" / "signcert.pem"
    revoke(crypto, "org2", victim)

    async def body(h: Harness) -> None:
        resp = await h.submit(h.sign(h.who("org2"), "token", "balance", "x").raw)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "certificate_revoked"
        ok = await h.invoke(h.who("org3", "admin@org3"), "token", "issue", "org3/x", 1)
        assert ok["receipt"]["status"] == "ok"

    run_node(crypto, tmp_path / "n", body)


FAILING = """
from consortia.contract import Contract, ContractError, view


class Counter(Contract):
    def bump(self, by):
        self.ctx.put("n", (self.ctx.get("n") or 0) + by)
        if by > 10:
            raise ContractError("too big")
        return self.ctx.get("n")

    def spin(self):
        self.ctx.put("n", -1)
        while True:
            pass

    @view
    def get(self):
        return self.ctx.get("n") or 0
"""


def test_contract_failures_roll_back_and_roles_are_enforced(crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        alice = h.who("org1")
        # a client certificate where an admin is required: a failed receipt, nothing approved
        out = await h.invoke(alice, "lifecycle", "approve", "counter", "1", "00" * 32)
        assert out["receipt"]["status"] == "failed"
        out = await h.invoke(alice, "token", "issue", "org1/client0@org1", 10)
        assert out["receipt"]["status"] == "failed"
        # a contract that fails the sandbox check cannot be committed
        bad = "import os\n" + FAILING
        out = await h.deploy("badone", bad)
        assert out["receipt"]["status"] == "failed" and "import" in out["receipt"]["error"]
        assert (await h.query("badone", "get")).status_code == 404
        out = await h.deploy("counter", FAILING)
        assert out["receipt"]["status"] == "ok", out
        assert (await h.invoke(alice, "counter", "bump", 3))["receipt"]["result"] == 3
        root = h.state_root()
        raised = await h.invoke(alice, "counter", "bump", 50)
        assert raised["receipt"]["status"] == "failed" and "too big" in raised["receipt"]["error"]
        spun = await h.invoke(alice, "counter", "spin")
        assert spun["receipt"]["status"] == "failed" and "steps" in spun["receipt"]["error"].lower()
        assert (await h.query("counter", "get")).json()["result"] == 3
        assert h.state_root() == root  # failed calls wrote nothing
        resp = await h.query("counter", "bump", 1)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "not_a_view"

    run_node(crypto_dir, tmp_path, body)


def test_rate_limit(crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        codes = [(await h.http.get("/v1/health")).status_code for _ in range(5)]
        assert codes[:2] == [200, 200] and codes[-1] == 429

    run_node(crypto_dir, tmp_path, body, rate_per_s=1, rate_burst=2)


def test_unknown_config_fields_are_refused(tmp_path: Path) -> None:
    import pytest

    from consortia.node.config import ConfigError, load_config

    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "a"\norg = "b"\nsurprise = 1\n')
    with pytest.raises(ConfigError, match="surprise"):
        load_config(path)
    path.write_text('[node]\nname = "a"\norg = "b"\ntick_ms = 0\n')
    with pytest.raises(ConfigError, match="tick_ms"):
        load_config(path)
    path.write_text("not toml [")
    with pytest.raises(ConfigError):
        load_config(path)
    assert msgspec  # imported for struct helpers in other tests
