"""Client processes: pre-sign transactions, then submit them open-loop at a fixed rate.

Each worker is a separate OS process (the nodes' CPU is not shared with the load
generator's interpreter), driven by the coordinator over a pipe:

    ("sign", count)                 -> ("signed", count, seconds)
    ("go", t0, rate)                -> ("done", encoded [BatchRecord])
    ("query", t0, rate, count)      -> ("done", encoded [BatchRecord])

Requests go to the nodes in turn (batch k of worker w to node (w + k) mod n), as clients of
several organisations would each use their own node.
    ("stop",)                       -> the process exits

Open loop: batch k is due at `t0 + k * batch_ms`, whatever happened to earlier batches,
and its latency is measured from that due time, so a slow node cannot slow the load down
and hide its own queueing (coordinated omission). Times are `time.monotonic()`, which is
one clock for every process on the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from consortia.bench.minihttp import HttpError, Pool
from consortia.bench.workload import WorkerEnv, load_workload
from consortia.identity.wallet import load_signing_identity
from consortia.sdk import sign_transaction
from consortia.types import encode
from consortia.types.eth import tx_id_of

T = TypeVar("T")
INFLIGHT_MAX = 32  # concurrent requests per worker; more only queues inside the node


class BatchRecord(msgspec.Struct, array_like=True):
    """One request: when it was due, sent and answered, and what happened to each tx."""

    node: int
    due: float
    sent: float
    answered: float
    status: int  # HTTP status, 0 when the request failed without an answer
    tx_ids: list[bytes]  # empty for queries
    tx_bytes: int
    errors: list[str]  # per transaction: "" admitted, else the refusal code ("" per query too)


@dataclass(frozen=True)
class WorkerParams:
    index: int
    workload: str
    crypto: str
    senders: list[tuple[str, str]]  # (org, identity name)
    urls: list[str]
    chain_id: str
    channel: str
    batch_ms: int
    inflight_max: int = INFLIGHT_MAX
    workers: int = 1
    orgs: list[str] = field(default_factory=list)


class Worker:
    def __init__(self, p: WorkerParams) -> None:
        self.p = p
        self.workload = load_workload(p.workload)
        self.senders = [load_signing_identity(Path(p.crypto), org, name) for org, name in p.senders]
        self.next_index = 0
        self.signed: list[tuple[bytes, bytes]] = []  # (tx id, encoded envelope)

    def sign(self, count: int) -> float:
        started = time.perf_counter()
        out: list[tuple[bytes, bytes]] = []
        p, senders = self.p, self.senders
        if self.workload.raw:
            env = WorkerEnv(p.index, p.workers, p.urls, Path(p.crypto), p.orgs, p.channel, p.chain_id)
            self.signed = [(tx_id_of(raw), raw) for raw in self.workload.raw_transactions(env, count)]
            return time.perf_counter() - started
        for _ in range(count):
            i = self.next_index
            self.next_index += 1
            sender = senders[i % len(senders)]
            call = self.workload.call(p.index, i, sender)
            s = sign_transaction(sender, p.chain_id, p.channel, call.contract, call.method, call.args)
            out.append((s.tx_id, s.raw))
        self.signed = out
        return time.perf_counter() - started

    async def send(self, t0: float, rate: float) -> list[BatchRecord]:
        """Submit everything signed, `rate` tx/s in batches every `batch_ms`, from `t0` on."""
        pools = [Pool(url, self.p.inflight_max) for url in self.p.urls]
        path = f"/v1/channels/{self.p.channel}/transactions/batch"
        batches = _schedule(len(self.signed), rate, self.p.batch_ms / 1000)
        records: list[BatchRecord] = []
        tasks: list[asyncio.Task[None]] = []

        async def one(node: int, due: float, chunk: list[tuple[bytes, bytes]]) -> None:
            ids = [c[0] for c in chunk]
            raws = [c[1] for c in chunk]
            body = encode(raws)
            sent = time.monotonic()
            try:
                status, data, sent = await pools[node].request("POST", path, body)
            except HttpError as exc:
                errors = [f"no_answer: {exc}"] * len(ids)
                records.append(BatchRecord(node, due, sent, time.monotonic(), 0, ids, len(body), errors))
                return
            answered = time.monotonic()
            errors = _batch_errors(status, data, len(ids))
            size = sum(len(r) for r in raws)
            records.append(BatchRecord(node, due, sent, answered, status, ids, size, errors))

        start = 0
        for k, n in enumerate(batches):
            due = t0 + k * self.p.batch_ms / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            node = (self.p.index + k) % len(pools)
            tasks.append(asyncio.create_task(one(node, due, self.signed[start : start + n])))
            start += n
        await asyncio.gather(*tasks)
        for pool in pools:
            pool.close()
        self.signed = []
        return records

    async def query(self, t0: float, rate: float, count: int) -> list[BatchRecord]:
        """`count` read-only queries at `rate`/s, one request each, to the nodes in turn."""
        pools = [Pool(url, self.p.inflight_max) for url in self.p.urls]
        path = f"/v1/channels/{self.p.channel}/query"
        records: list[BatchRecord] = []
        bodies = []
        for _ in range(count):
            call = self.workload.query(self.p.index, self.next_index)
            self.next_index += 1
            doc = {"contract": call.contract, "method": call.method, "args": call.args}
            bodies.append(json.dumps(doc).encode())

        async def one(node: int, due: float, body: bytes) -> None:
            sent = time.monotonic()
            try:
                status, _, sent = await pools[node].request("POST", path, body, "application/json")
            except HttpError as exc:
                records.append(
                    BatchRecord(node, due, sent, time.monotonic(), 0, [], 0, [f"no_answer: {exc}"])
                )
                return
            err = "" if status == 200 else f"http_{status}"
            records.append(BatchRecord(node, due, sent, time.monotonic(), status, [], len(body), [err]))

        tasks = []
        for k, body in enumerate(bodies):
            due = t0 + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            node = (self.p.index + k) % len(pools)
            tasks.append(asyncio.create_task(one(node, due, body)))
        await asyncio.gather(*tasks)
        for pool in pools:
            pool.close()
        return records


def _schedule(total: int, rate: float, interval_s: float) -> list[int]:
    """Batch sizes so that the cumulative count after batch k is rate * (k + 1) * interval."""
    sizes: list[int] = []
    sent = 0
    k = 0
    while sent < total:
        k += 1
        target = min(total, int(rate * k * interval_s))
        sizes.append(target - sent)
        sent = target
    return sizes


def _batch_errors(status: int, data: bytes, count: int) -> list[str]:
    if status != 200:
        try:
            code = json.loads(data)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "error"
        return [f"http_{status}:{code}"] * count
    results: list[dict[str, Any]] = json.loads(data)["results"]
    return [r["error"]["code"] if "error" in r else "" for r in results]


def worker_main(params: WorkerParams, conn: Connection) -> None:
    """Entry point of a client process. Exits on ("stop",) or when the pipe closes."""
    worker = Worker(params)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            cmd = conn.recv()
        except EOFError:
            return
        if cmd[0] == "stop":
            return
        if cmd[0] == "sign":
            conn.send(("signed", cmd[1], worker.sign(cmd[1])))
        elif cmd[0] == "go":
            records = _run(worker.send(cmd[1], cmd[2]))
            conn.send(("done", msgspec.msgpack.encode(records)))
        elif cmd[0] == "query":
            records = _run(worker.query(cmd[1], cmd[2], cmd[3]))
            conn.send(("done", msgspec.msgpack.encode(records)))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        return asyncio.run(coro)
    return uvloop.run(coro)


def decode_records(data: bytes) -> list[BatchRecord]:
    return msgspec.msgpack.decode(data, type=list[BatchRecord])
