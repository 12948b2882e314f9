"""Several validators: one account's nonces sent to different nodes in reverse order.

Every node forwards what it admitted to the others, so the primary hears the nonces in
whatever order gossip brings them; its pool must still propose them in nonce order, and
the other nodes must agree on the result.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from consortia.identity.wallet import load_signing_identity
from consortia.sdk import Client
from consortia.types.eth import eth_chain_id, keccak256, sign_eth_transaction
from tests.cluster.cluster_kit import Cluster

from .evm_kit import ALICE, ALICE_KEY, BOB

NONCES = 8


def test_nonces_sent_to_several_validators_out_of_order_commit_in_order(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", "pbft")
    cluster.start()
    try:
        crypto = cluster.base / "crypto"
        entries = cluster.entries
        update = {"op": "evm_permit", "address": "0x" + ALICE.hex(), "org": "org1"}
        with Client(entries[0].api, load_signing_identity(crypto, "org1", "admin@org1")) as admin:
            pid = admin.invoke("config", "propose", update)["receipt"]["result"]
            chain_id = eth_chain_id(admin.info()["chain_id"], "main")
        for org in ("org2", "org3"):
            with Client(entries[0].api, load_signing_identity(crypto, org, f"admin@{org}")) as admin:
                assert admin.invoke("config", "approve", pid)["receipt"]["status"] == "ok"

        raws = [
            sign_eth_transaction(ALICE_KEY, chain_id=chain_id, nonce=n, gas=21_000, to=BOB)
            for n in range(NONCES)
        ]
        for i, nonce in enumerate(reversed(range(NONCES))):  # the highest nonce first
            url = entries[i % len(entries)].api
            resp = httpx.post(
                f"{url}/v1/channels/main/transactions",
                content=raws[nonce],
                headers={"content-type": "application/octet-stream"},
                params={"wait": "false"},
            )
            assert resp.status_code == 200, resp.text

        tx_ids = [keccak256(raw).hex() for raw in raws]
        views = [_positions(e.api, tx_ids) for e in entries]
        assert all(view == views[0] for view in views)
        assert views[0] == sorted(views[0])  # nonce order
        cluster.wait_converged(timeout_s=60)
    finally:
        cluster.stop_all()


def _positions(url: str, tx_ids: list[str], timeout_s: float = 60.0) -> list[tuple[int, int]]:
    """Each transaction's (height, index) on one node, once all committed with status ok."""
    deadline = time.monotonic() + timeout_s
    with Client(url, None, "main") as reader:
        while True:
            infos = [reader.status(tx) for tx in tx_ids]
            if all(i["status"] == "committed" for i in infos):
                assert all(i["receipt"]["status"] == "ok" for i in infos), infos
                return [(i["height"], i["index"]) for i in infos]
            assert time.monotonic() < deadline, infos
            time.sleep(0.2)
