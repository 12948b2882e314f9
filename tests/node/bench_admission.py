"""CPU per admitted transaction on the way in: API batches and peer gossip.

Not a test (no timing assertions): run it to re-measure on a host, e.g.

    PYTHONPATH=src:. python -m tests.node.bench_admission [--instant-verify]

It builds the first validator of a 4-org Raft network in this process (not started: no
engine, no peers), pre-signs token transfers from eight clients, and admits them through

    submit_many/500  `Node.submit_many` with 500-transaction batches (the API batch's core)
    gossip/N         `Peering`'s handler for transaction frames of N transactions, one frame
                     per event-loop turn (in the 4-node benchmarks frames hold tens)
    http/N           the ASGI app as uvicorn runs it (`cli.serve.uvicorn_config`), POST
                     .../transactions/batch of N

"loop thread" is the event-loop thread's CPU time per transaction (`time.thread_time`: the
GIL-holding admission work, not the signature checks on the verifier's threads); "all
threads" is the whole process's. Each is the median (and the minimum) over the rounds.
Between rounds the pool forgets what it admitted, so every round admits the same
transactions afresh. `--instant-verify` answers signature checks at once: the loop's own
work without the verifier threads competing for the cores, a steadier figure on a busy host.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import msgspec

from consortia.api.app import create_app
from consortia.cli.network_cmd import create_network
from consortia.cli.serve import uvicorn_config
from consortia.identity.wallet import load_signing_identity
from consortia.node.admission import AdmissionError
from consortia.node.config import load_config
from consortia.node.main import build_node
from consortia.node.peering import Peering
from consortia.node.runtime import Node
from consortia.sdk import sign_transaction

ORGS = ["org1", "org2", "org3", "org4"]
BATCH_PATH = "/v1/channels/main/transactions/batch"


def sign_transfers(crypto: Path, node: Node, count: int) -> list[bytes]:
    signers = [
        load_signing_identity(crypto, org, name)
        for org in ORGS
        for name in (f"client0@{org}", f"admin@{org}")
    ]
    cfg = node.config
    return [
        sign_transaction(
            signers[i % len(signers)],
            cfg.chain_id,
            cfg.channel,
            "token",
            "transfer",
            [f"org1/sink{i % 64}", 1],
        ).raw
        for i in range(count)
    ]


def forget(node: Node, raws: list[bytes], ids: list[bytes]) -> None:
    """Undo admission so the next round admits the same transactions again."""
    node.mempool.remove(ids)
    for tx_id in ids:
        node._pending.pop(tx_id, None)
    node.verified.forget(raws)


async def settle() -> None:
    """Wait for every task but this one (admissions started by a handler)."""
    while True:
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if not others:
            return
        await asyncio.gather(*others)


def chunks(raws: list[bytes], size: int) -> list[list[bytes]]:
    return [raws[i : i + size] for i in range(0, len(raws), size)]


async def via_submit_many(node: Node, raws: list[bytes], size: int) -> None:
    for batch in chunks(raws, size):
        for res in await node.submit_many(batch):
            if isinstance(res, AdmissionError):
                raise res


async def via_gossip(peering: Peering, raws: list[bytes], size: int) -> None:
    """One frame per event-loop turn (frames arriving together would be admitted together)."""
    for frame in chunks(raws, size):
        peering._on_txs("peer0.org2", msgspec.msgpack.encode(frame))
        await asyncio.sleep(0)
    await settle()


def asgi_app(node: Node) -> Any:
    """The application object uvicorn runs, wrapped as the node process configures it."""
    config = uvicorn_config(create_app(node), "127.0.0.1", 7050, 4 << 20)
    config.load()
    return config.loaded_app


async def via_http(app: Any, raws: list[bytes], size: int) -> None:
    for batch in chunks(raws, size):
        body = msgspec.msgpack.encode(batch)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": BATCH_PATH,
            "raw_path": BATCH_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:7050"),
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 7050),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200 or b'"error"' in sent[-1]["body"]:
            raise RuntimeError(f"batch refused: {sent[-1]['body'][:300]!r}")


async def measure(
    node: Node, raws: list[bytes], ids: list[bytes], rounds: int, run: Callable[[], Awaitable[None]]
) -> tuple[list[float], list[float]]:
    """(loop-thread µs, whole-process µs) per transaction, one of each per round."""
    loop_us, all_us = [], []
    for _ in range(rounds + 1):  # the first round warms caches and is not counted
        forget(node, raws, ids)
        gc.collect()  # each round starts from the same heap
        thread, proc = time.thread_time(), time.process_time()
        await run()
        thread, proc = time.thread_time() - thread, time.process_time() - proc
        if len(node.mempool) != len(raws):
            raise RuntimeError(f"admitted {len(node.mempool)} of {len(raws)}")
        loop_us.append(thread / len(raws) * 1e6)
        all_us.append(proc / len(raws) * 1e6)
    return loop_us[1:], all_us[1:]


def instant_verifier(node: Node) -> None:
    """Answer every signature check at once, as valid (the benchmark signs only valid ones)."""

    def submit(jobs: list[Any]) -> list[Future[list[bool]]]:
        done: Future[list[bool]] = Future()
        done.set_result([True] * len(jobs))
        return [done]

    node._verifier.submit = submit  # type: ignore[method-assign]


async def main(count: int, rounds: int, only: set[str], instant: bool) -> None:
    from consortia.types import decode_envelope

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ports = [(17050 + i, 17150 + i) for i in range(len(ORGS))]
        entries = create_network(base, ORGS, "raft", ports=ports)
        cfg = load_config(Path(entries[0].config))
        node = build_node(cfg)
        assert cfg.p2p is not None
        peering = Peering(
            node, cfg.p2p.host, cfg.p2p.port, cfg.path(cfg.p2p.tls_cert), cfg.path(cfg.p2p.tls_key)
        )
        if instant:
            instant_verifier(node)
        try:
            raws = sign_transfers(base / "crypto", node, count)
            ids = [decode_envelope(raw)[0].tx_id for raw in raws]
            app = asgi_app(node)
            gc.freeze()  # as the node process does once it serves (cli/serve.py)
            cases: dict[str, Callable[[], Awaitable[None]]] = {
                "submit_many/500": lambda: via_submit_many(node, raws, 500),
                "gossip/2000": lambda: via_gossip(peering, raws, 2000),
                "gossip/50": lambda: via_gossip(peering, raws, 50),
                "http/500": lambda: via_http(app, raws, 500),
                "http/50": lambda: via_http(app, raws, 50),
            }
            print(f"{count} transfers from 8 signers, {rounds} rounds, µs of CPU per tx: median (min)")
            for name, run in cases.items():
                if only and name.split("/")[0] not in only:
                    continue
                loop_us, all_us = await measure(node, raws, ids, rounds, run)
                print(
                    f"  {name:<16} loop thread {statistics.median(loop_us):6.2f} ({min(loop_us):6.2f})"
                    f"   all threads {statistics.median(all_us):6.2f} ({min(all_us):6.2f})"
                )
        finally:
            await node.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=[], help="submit_many, gossip and/or http")
    parser.add_argument(
        "--instant-verify", action="store_true", help="no signature checks (see instant_verifier)"
    )
    args = parser.parse_args()
    run = main(args.txs, args.rounds, set(args.only), args.instant_verify)
    try:
        import uvloop

        uvloop.run(run)
    except ImportError:  # pragma: no cover
        asyncio.run(run)
