"""Signed token transfers against a node: the platform's baseline throughput figure.

All transactions are signed before the timed phase, so the figure measures the platform
(admission, signature checks, ordering, execution, durable commit), not the client.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from consortia.identity.wallet import SigningIdentity, load_signing_identity
from consortia.sdk import Client, SignedTx, sign_transaction

ORGS = ["org1", "org2", "org3", "org4"]


@dataclass
class TransferReport:
    txs: int
    senders: int
    submit_s: float
    commit_s: float
    tps: float
    committed: int
    rejected: int
    lost: int
    blocks: int
    mean_block_txs: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def presign(senders: list[SigningIdentity], chain_id: str, channel: str, txs: int) -> list[SignedTx]:
    return [
        sign_transaction(
            senders[i % len(senders)],
            chain_id,
            channel,
            "token",
            "transfer",
            [f"{ORGS[(i + 1) % len(ORGS)]}/sink", 1],
        )
        for i in range(txs)
    ]


def measure(
    url: str, crypto: Path, txs: int, batch: int = 1000, clients_per_org: int = 1, submitters: int = 2
) -> TransferReport:
    """Fund every client account, pre-sign `txs` transfers, submit in batches, wait for all."""
    senders = [
        load_signing_identity(crypto, org, f"client{c}@{org}") for org in ORGS for c in range(clients_per_org)
    ]
    with Client(url, None, "main") as reader:
        info = reader.info()
    chain_id, channel = info["chain_id"], info["channel"]
    per_sender = txs // len(senders) + 1
    for org in ORGS:
        with Client(url, load_signing_identity(crypto, org, f"admin@{org}"), channel) as admin:
            for s in senders:
                if s.org == org:
                    out = admin.invoke("token", "issue", f"{s.org}/{s.name}", per_sender)
                    if out["receipt"]["status"] != "ok":
                        raise RuntimeError(f"funding failed: {out['receipt']['error']}")
    signed = presign(senders, chain_id, channel, txs)
    with Client(url, None, channel) as reader:
        start_height = reader.info()["height"]
    chunks = [signed[i : i + batch] for i in range(0, len(signed), batch)]
    rejected = 0
    started = time.perf_counter()

    def send(chunk: list[SignedTx]) -> int:
        with Client(url, None, channel) as c:
            return sum(1 for r in c.submit_many(chunk) if "error" in r)

    with ThreadPoolExecutor(submitters) as pool:
        rejected = sum(pool.map(send, chunks))
    submitted_s = time.perf_counter() - started
    with Client(url, None, channel) as reader:
        for tx in (signed[-1], signed[len(signed) // 2], signed[0]):
            reader.status(tx.tx_id, wait=True)
        committed_s = time.perf_counter() - started
        end_height = reader.info()["height"]
        committed = sum(
            reader.block(h)["header"]["tx_count"] for h in range(start_height + 1, end_height + 1)
        )
        for tx in signed[:: max(1, len(signed) // 200)]:  # spot-check that receipts are successes
            st = reader.status(tx.tx_id)
            if st["status"] != "committed" or st["receipt"]["status"] != "ok":
                raise RuntimeError(f"transfer {tx.tx_id.hex()} did not succeed: {st}")
    blocks = end_height - start_height
    return TransferReport(
        txs=txs,
        senders=len(senders),
        submit_s=round(submitted_s, 3),
        commit_s=round(committed_s, 3),
        tps=round(committed / committed_s, 1),
        committed=committed,
        rejected=rejected,
        lost=max(0, txs - rejected - committed),
        blocks=blocks,
        mean_block_txs=round(committed / blocks, 1) if blocks else 0.0,
    )


def measure_fresh_node(txs: int, workdir: Path | None = None) -> TransferReport:
    """Stand up a single Solo node in a temporary directory, measure, tear it down."""
    from consortia.cli.node_cmd import init_single_node
    from consortia.cli.procs import free_port, start_node_process, stop_node_process, wait_healthy
    from consortia.identity.cryptogen import generate_consortium

    base = workdir or Path(tempfile.mkdtemp(prefix="consortia-bench-"))
    try:
        crypto = base / "crypto"
        generate_consortium(crypto, ORGS, clients=4)
        port = free_port()
        config = init_single_node(crypto, ORGS, base / "net", "org1", port=port, wait_ms=20)
        proc = start_node_process(config, base / "node.log")
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            return measure(f"http://127.0.0.1:{port}", crypto, txs, clients_per_org=4)
        finally:
            stop_node_process(proc)
    finally:
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
