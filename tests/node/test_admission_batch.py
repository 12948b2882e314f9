"""Batch admission refuses exactly what single submission refuses, with the same codes and
statuses, whichever way a batch arrives: the API's batch path (served before FastAPI's
stack), the FastAPI route of the same URL, one request per transaction, or peer gossip."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from consortia.api.app import STATUS_BY_CODE, create_app
from consortia.cli.serve import uvicorn_config
from consortia.identity.crl import revoke
from consortia.identity.cryptogen import generate_consortium
from consortia.identity.ethkeys import load_eth_key
from consortia.identity.wallet import load_signing_identity
from consortia.node.admission import AdmissionError
from consortia.node.config import load_config
from consortia.node.main import build_node
from consortia.types import Envelope, decode, encode
from consortia.types.eth import eth_chain_id_of, sign_eth_transaction
from tests.node.conftest import ORGS, Harness, make_node_config, run_node

BATCH = "/v1/channels/main/transactions/batch"
PENDING = "pending"


@pytest.fixture(scope="module")
def crypto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A consortium whose org2 client is revoked, plus a foreign one (under `foreign/`)."""
    base = tmp_path_factory.mktemp("batch")
    generate_consortium(base / "crypto", ORGS)
    revoke(
        base / "crypto", "org2", base / "crypto" / "orgs" / "org2" / "users" / "client0@org2" / "signcert.pem"
    )
    generate_consortium(base / "foreign", ["org1"])
    return base / "crypto"


def _forge(raw: bytes) -> bytes:
    env = decode(raw, Envelope)
    return encode(Envelope(env.payload, bytes(64)))


async def _mixed(h: Harness) -> list[tuple[bytes, str]]:
    """Commit one transaction, then build a mix of good and bad ones with what each gets."""
    admin, alice, bob = h.who("org1", "admin@org1"), h.who("org1"), h.who("org3")
    revoked = h.who("org2")
    foreign = load_signing_identity(h.crypto.parent / "foreign", "org1", "client0@org1")
    issued = h.sign(admin, "token", "issue", "org1/client0@org1", 100).raw
    assert (await h.submit(issued)).json()["status"] == "committed"

    def transfer(who: Any, **kw: Any) -> bytes:
        raw: bytes = h.sign(who, "token", "transfer", "org2/bob", 1, **kw).raw
        return raw

    eth_key = load_eth_key(h.crypto / "orgs" / "org1" / "users" / "client0@org1")
    chain = eth_chain_id_of(h.node.config)
    eth_ok = sign_eth_transaction(eth_key, chain_id=chain, nonce=0, gas=21_000, to=bytes(20))
    eth_stranger = sign_eth_transaction(os.urandom(32), chain_id=chain, nonce=0, gas=21_000, to=bytes(20))
    good = [transfer(alice), transfer(bob), transfer(alice)]
    return [
        (good[0], PENDING),
        (b"\x00garbage", "malformed"),
        (transfer(alice, channel="other"), "wrong_channel"),
        (transfer(alice, chain_id="other"), "wrong_chain"),
        (transfer(revoked), "certificate_revoked"),
        (transfer(foreign), "unknown_issuer"),
        (good[1], PENDING),
        (issued, "duplicate_transaction"),  # committed already
        (good[0], "duplicate_transaction"),  # earlier in this batch
        (_forge(transfer(alice)), "bad_signature"),
        (h.sign(alice, "token", "transfer", "org2/bob", 1.5).raw, "malformed"),
        (transfer(alice, expiry_height=1), "expired"),
        (_forge(transfer(revoked)), "certificate_revoked"),  # the certificate is judged first
        (_forge(good[2]), "bad_signature"),  # its payload is fine, and comes again below
        (good[2], PENDING),
        (eth_ok, PENDING),
        (eth_stranger, "not_permitted"),
        (eth_ok, "duplicate_transaction"),
    ]


def _outcomes(results: list[dict[str, Any]]) -> list[str]:
    return [r["error"]["code"] if "error" in r else r["status"] for r in results]


async def _via_batch(h: Harness, raws: list[bytes], query: dict[str, str]) -> list[str]:
    resp = await h.http.post(BATCH, content=msgspec.msgpack.encode(raws), params=query)
    assert resp.status_code == 200, resp.text
    return _outcomes(resp.json()["results"])


async def _one_by_one(h: Harness, raws: list[bytes]) -> list[str]:
    out = []
    for raw in raws:
        resp = await h.submit(raw, wait=False)
        body = resp.json()
        if resp.status_code == 200:
            out.append(body["status"])
        else:
            code = body["error"]["code"]
            assert resp.status_code == STATUS_BY_CODE.get(code, 400), (code, resp.status_code)
            out.append(code)
    return out


@pytest.mark.parametrize("route", ["batch", "fastapi_batch", "one_by_one", "forwarded"])
def test_every_route_admits_and_refuses_alike(crypto: Path, tmp_path: Path, route: str) -> None:
    async def body(h: Harness) -> tuple[list[str], list[str], dict[str, int]]:
        cases = await _mixed(h)
        raws = [raw for raw, _ in cases]
        rejected_before = dict(h.node.stats.rejected)
        if route == "batch":
            got = await _via_batch(h, raws, {})
        elif route == "fastapi_batch":  # a query string leaves the request to FastAPI's route
            got = await _via_batch(h, raws, {"via": "fastapi"})
        elif route == "one_by_one":
            got = await _one_by_one(h, raws)
        else:  # as gossip from a peer: not counted as this node's refusals, not gossiped on
            gossiped: list[list[bytes]] = []
            h.node.on_admitted = gossiped.append
            results = await h.node.submit_many(raws, forwarded=True)
            got = [r.code if isinstance(r, AdmissionError) else PENDING for r in results]
            assert gossiped == [] and h.node.stats.rejected == rejected_before
        rejected = {
            code: n - rejected_before.get(code, 0)
            for code, n in h.node.stats.rejected.items()
            if n != rejected_before.get(code, 0)
        }
        return got, [want for _, want in cases], rejected

    got, want, rejected = run_node(crypto, tmp_path / route, body)
    assert got == want
    if route != "forwarded":
        refusals = [code for code in want if code != PENDING]
        assert rejected == {code: refusals.count(code) for code in set(refusals)}


def test_each_submission_gossips_what_it_admitted_in_order(crypto: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        gossiped: list[list[bytes]] = []
        h.node.on_admitted = gossiped.append
        alice = h.who("org1")
        raws = [h.sign(alice, "token", "transfer", "org2/bob", 1).raw for _ in range(3)]
        await h.http.post(BATCH, content=msgspec.msgpack.encode([raws[0], b"junk", raws[1], raws[0]]))
        await h.submit(raws[2], wait=False)
        assert gossiped == [[raws[0], raws[1]], [raws[2]]]

    run_node(crypto, tmp_path / "n", body)


def test_batch_path_keeps_the_limits_and_error_answers(crypto: Path, tmp_path: Path) -> None:
    config_path = make_node_config(crypto, tmp_path / "n")

    async def main() -> None:
        node = build_node(load_config(config_path))
        await node.start()
        # The application as the node process hands it to uvicorn (cli/serve.py).
        config = uvicorn_config(create_app(node, rate_per_s=1, rate_burst=3), "127.0.0.1", 0, 1 << 20)
        config.load()
        transport = httpx.ASGITransport(app=config.loaded_app, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
                empty = msgspec.msgpack.encode([])
                assert (await http.post(BATCH, content=empty)).json() == {"results": []}

                async def broken(raws: list[bytes], forwarded: bool = False) -> list[Any]:
                    raise RuntimeError("a bug")

                node.submit_many = broken  # type: ignore[method-assign]
                for query in ({}, {"via": "fastapi"}):  # unexpected errors answer alike
                    resp = await http.post(BATCH, content=empty, params=query)
                    assert (resp.status_code, resp.text) == (500, "Internal Server Error")
                resp = await http.post(BATCH, content=empty)
                assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
                # One budget per connecting address, whatever a header claims.
                resp = await http.get("/v1/health", headers={"x-forwarded-for": "10.9.9.9"})
                assert resp.status_code == 429
        finally:
            await node.stop()

    asyncio.run(main())


def test_gossip_frames_of_one_loop_turn_are_admitted_together(tmp_path: Path) -> None:
    from consortia.cli.network_cmd import create_network
    from consortia.node.peering import GOSSIP_TXS_MAX, Peering

    entries = create_network(tmp_path, ORGS, "raft", ports=[(0, 0)] * len(ORGS))
    cfg = load_config(Path(entries[0].config))
    assert cfg.p2p is not None

    def frame(tag: str, n: int) -> bytes:
        return msgspec.msgpack.encode([f"{tag}{i}".encode() for i in range(n)])

    async def main() -> list[list[bytes]]:
        node = build_node(cfg)
        peering = Peering(node, "127.0.0.1", 0, cfg.path(cfg.p2p.tls_cert), cfg.path(cfg.p2p.tls_key))
        calls: list[list[bytes]] = []

        async def record(raws: list[bytes], forwarded: bool = False) -> list[bytes | AdmissionError]:
            assert forwarded
            calls.append(list(raws))
            return []

        node.submit_many = record  # type: ignore[method-assign]
        try:
            peering._on_txs("peer0.org2", frame("a", 2))
            peering._on_txs("peer0.org3", b"\xc1 not msgpack")  # ignored
            peering._on_txs("peer0.org3", frame("b", 3))
            peering._on_txs("peer0.org4", frame("c", GOSSIP_TXS_MAX - 4))  # would overflow: next batch
            await asyncio.sleep(0)  # the admitting tasks start
            peering._on_txs("peer0.org2", frame("d", GOSSIP_TXS_MAX + 10))  # a new batch, cut to size
            await asyncio.sleep(0)
            await asyncio.gather(*peering._admitting)
        finally:
            await node.stop()
        return calls

    calls = asyncio.run(main())
    assert [len(c) for c in calls] == [5, GOSSIP_TXS_MAX - 4, GOSSIP_TXS_MAX]
    assert calls[0] == [b"a0", b"a1", b"b0", b"b1", b"b2"]
    assert calls[1][0] == b"c0" and calls[2][-1] == f"d{GOSSIP_TXS_MAX - 1}".encode()


def test_a_block_committed_while_signatures_are_checked_is_asked_about(crypto: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        raw = h.sign(h.who("org1"), "token", "transfer", "org2/bob", 1).raw
        tx_id = decode(raw, Envelope).tx_id
        node = h.node
        verify_many = node._batcher.verify_many

        def meanwhile(jobs: list[Any]) -> asyncio.Future[list[bool]]:
            node.committed.add_committed([tx_id])  # what the commit thread does
            node.stats.blocks += 1  # then `_after_commit`, on the loop
            return verify_many(jobs)

        node._batcher.verify_many = meanwhile  # type: ignore[method-assign]
        [result] = await node.submit_many([raw])
        assert isinstance(result, AdmissionError) and result.code == "duplicate_transaction"
        assert tx_id not in node.mempool

    run_node(crypto, tmp_path / "n", body)
