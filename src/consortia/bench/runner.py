"""One benchmark session against one network: set up, run at fixed rates, account for everything.

`Harness` owns the client processes and the block observer for its lifetime, so a ramp of
several rates pays for process start-up and workload set-up once. Every transaction of a run
is signed before its timed phase starts.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx

from consortia.bench.errors import BenchError
from consortia.bench.loadgen import BatchRecord, WorkerParams, decode_records, worker_main
from consortia.bench.observer import BlockObserver
from consortia.bench.procstats import ProcSample, disk_usage, host_cpu, host_cpu_shares, load_average, sample
from consortia.bench.results import NodeUsage, RunResult, latency_summary, timeline
from consortia.bench.target import Target
from consortia.bench.workload import SetupEnv, Workload, client_identities, load_workload
from consortia.types import Block, decode
from consortia.types.eth import tx_id_of

START_DELAY_S = 0.3  # lets every worker be waiting when the first batch is due
RECEIPT_SAMPLE = 50


@dataclass(frozen=True)
class RunOptions:
    workload: str = "transfer"
    workers: int = 2
    batch_ms: int = 50
    drain_s: float = 30.0  # after the last submission, how long to wait for missing commits


class Harness:
    def __init__(self, target: Target, options: RunOptions) -> None:
        if options.workers < 1:
            raise BenchError("--workers must be at least 1")
        if options.batch_ms < 1:
            raise BenchError("--batch-ms must be at least 1")
        self.target = target
        self.o = options
        self.workload: Workload = load_workload(options.workload)
        self._procs: list[Any] = []
        self._conns: list[Connection] = []
        self.client_pids: list[int] = []
        self.observer = BlockObserver(target.urls, target.channel)

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Harness:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Set the workload up, start the client processes and the block observer.

        Raises BenchError when the workload's set-up fails or a client process cannot start.
        """
        t = self.target
        from consortia.identity.errors import IdentityError

        try:
            senders = client_identities(t.crypto, t.orgs)
        except (IdentityError, OSError) as exc:
            raise BenchError(f"cannot load client identities: {exc}") from exc
        env = SetupEnv(t.urls, t.crypto, t.orgs, t.channel, t.chain_id, senders, self.o.workers)
        try:
            self.workload.setup(env)
        except (httpx.HTTPError, IdentityError) as exc:
            raise BenchError(f"workload {self.workload.name} set-up failed: {exc}") from exc
        ctx = multiprocessing.get_context("spawn")
        w = self.o.workers
        for i in range(w):
            mine = senders[i::w] or senders  # fewer senders than workers: share them
            params = WorkerParams(
                index=i,
                workload=self.o.workload,
                crypto=str(t.crypto),
                senders=[(s.org, s.name) for s in mine],
                urls=t.urls,
                chain_id=t.chain_id,
                channel=t.channel,
                batch_ms=self.o.batch_ms,
                workers=w,
                orgs=t.orgs,
            )
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main, args=(params, child), name=f"bench-client-{i}", daemon=True
            )
            proc.start()
            self._procs.append(proc)
            self._conns.append(parent)
        for conn in self._conns:
            self.client_pids.append(int(self._expect(conn, "ready")[1]))
        self.observer.start()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        self._procs.clear()
        self._conns.clear()
        self.observer.stop()

    def _expect(self, conn: Connection, kind: str, timeout_s: float = 600.0) -> Any:
        if not conn.poll(timeout_s):
            raise BenchError(f"a client process did not answer {kind!r} within {timeout_s:.0f} s")
        try:
            msg = conn.recv()
        except EOFError as exc:
            raise BenchError("a client process died (see its traceback above)") from exc
        if msg[0] != kind:
            raise BenchError(f"client process answered {msg[0]!r}, expected {kind!r}")
        return msg

    # ---- one run ----------------------------------------------------------------------------
    def run(self, rate: float, duration_s: float, on_start: Callable[[], None] | None = None) -> RunResult:
        """Submit `rate` tx/s (or queries/s) for `duration_s` and account for every one.

        `on_start` is called once everything is signed, just before the timed phase.

        Raises BenchError for a non-positive rate or duration, or a client process failure.
        """
        if rate <= 0 or duration_s <= 0:
            raise BenchError("rate and duration must be positive")
        w = self.o.workers
        shares = _split(round(rate * duration_s), w)
        if self.workload.read_only:
            if on_start is not None:
                on_start()
            return self._run_queries(rate, duration_s, shares)
        for conn, n in zip(self._conns, shares, strict=True):
            conn.send(("sign", n))
        for conn in self._conns:
            self._expect(conn, "signed")
        if on_start is not None:
            on_start()
        start_height = self._height()
        before = self._usage_sample()
        t0 = time.monotonic() + START_DELAY_S
        for conn in self._conns:
            conn.send(("go", t0, rate / w))
        records: list[BatchRecord] = []
        for conn in self._conns:
            records.extend(decode_records(self._expect(conn, "done", duration_s + 600)[1]))
        last_answer = max((r.answered for r in records), default=t0)
        found, blocks = self._drain(records, start_height, last_answer)
        after = self._usage_sample()
        return self._result(rate, duration_s, t0, records, found, blocks, before, after, last_answer)

    def _run_queries(self, rate: float, duration_s: float, shares: list[int]) -> RunResult:
        before = self._usage_sample()
        t0 = time.monotonic() + START_DELAY_S
        for conn, n in zip(self._conns, shares, strict=True):
            conn.send(("query", t0, rate / len(self._conns), n))
        records: list[BatchRecord] = []
        for conn in self._conns:
            records.extend(decode_records(self._expect(conn, "done", duration_s + 600)[1]))
        after = self._usage_sample()
        ok = [r for r in records if r.status == 200]
        lats = [(r.answered - r.due) * 1000 for r in ok]
        last = max((r.answered for r in ok), default=t0)
        rejected: dict[str, int] = {}
        for r in records:
            if r.status != 200:
                code = r.errors[0].split(":")[0] if r.errors else "error"
                rejected[code] = rejected.get(code, 0) + 1
        horizon = math.ceil(last - t0) + 1
        usage = self._usage(before, after, max(1e-9, last - t0))
        return RunResult(
            workload=self.workload.name,
            consensus=self.target.consensus,
            nodes=len(self.target.nodes),
            offered_rate=rate,
            duration_s=duration_s,
            workers=self.o.workers,
            submitted=len(records),
            committed=len(ok),
            rejected=sum(rejected.values()),
            lost=0,
            tps=round(len(ok) / max(1e-9, last - t0), 1),
            latency_ms=latency_summary(lats),
            rejected_by_code=rejected,
            read_only=True,
            nodes_usage=usage,
            client_cpu_s=_client_cpu(before, after),
            txs_per_node_cpu_s=_per_cpu(len(ok), usage),
            send_lag_ms_max=round(max(((r.sent - r.due) * 1000 for r in records), default=0.0), 1),
            timeline=timeline(
                t0,
                [r.due for r in records],
                [(r.answered, x) for r, x in zip(ok, lats, strict=True)],
                horizon,
            ),
            latencies_ms=lats,
            load_average=list(load_average()),
            host_cpu=host_cpu_shares(before["host"], after["host"]),
        )

    # ---- accounting -------------------------------------------------------------------------
    def _height(self) -> int:
        with httpx.Client(base_url=self.target.urls[0], timeout=10.0) as c:
            return int(c.get(f"/v1/channels/{self.target.channel}/info").json()["height"])

    def _drain(
        self, records: list[BatchRecord], start_height: int, last_answer: float
    ) -> tuple[dict[bytes, int], dict[int, tuple[int, int, int]]]:
        """Scan committed blocks until every submitted tx is found or `drain_s` has passed.

        Returns (tx id -> height) for our transactions and, per block scanned,
        (tx count, raw tx bytes, encoded block bytes).
        """
        wanted = {tx for r in records for tx, e in zip(r.tx_ids, r.errors, strict=False) if not e}
        # Transactions refused at the door may still be found (a retry elsewhere); look for all.
        every = {tx for r in records for tx in r.tx_ids}
        found: dict[bytes, int] = {}
        blocks: dict[int, tuple[int, int, int]] = {}
        deadline = last_answer + self.o.drain_s
        next_h = start_height + 1
        with httpx.Client(base_url=self.target.urls[0], timeout=30.0) as c:
            path = f"/v1/channels/{self.target.channel}"
            while True:
                height = int(c.get(f"{path}/info").json()["height"])
                while next_h <= height:
                    resp = c.get(f"{path}/blocks/{next_h}", params={"raw": "true"})
                    if resp.status_code != 200:
                        break
                    block = decode(resp.content, Block)
                    size = 0
                    for raw in block.txs:
                        size += len(raw)
                        tx_id = tx_id_of(raw)  # native envelopes and Ethereum transactions
                        if tx_id in every:
                            found[tx_id] = next_h
                    blocks[next_h] = (len(block.txs), size, len(resp.content))
                    next_h += 1
                if wanted.issubset(found.keys()) or time.monotonic() > deadline:
                    return found, blocks
                time.sleep(0.1)

    def _usage_sample(self) -> dict[str, Any]:
        nodes = [sample(n.pid) if n.pid else None for n in self.target.nodes]
        disks = [disk_usage(n.data_dir) if n.data_dir is not None else None for n in self.target.nodes]
        clients = [sample(pid) for pid in self.client_pids]
        return {"nodes": nodes, "disks": disks, "clients": clients, "host": host_cpu(), "t": time.monotonic()}

    def _usage(self, before: dict[str, Any], after: dict[str, Any], wall_s: float) -> list[NodeUsage]:
        out = []
        for i, node in enumerate(self.target.nodes):
            b: ProcSample | None = before["nodes"][i]
            a: ProcSample | None = after["nodes"][i]
            db, da = before["disks"][i], after["disks"][i]
            cpu = None if a is None or b is None else round(a.cpu_s - b.cpu_s, 2)
            out.append(
                NodeUsage(
                    name=node.name,
                    cpu_s=cpu,
                    cpu_pct=None if cpu is None else round(100 * cpu / wall_s, 1),
                    rss_peak_mib=None if a is None else round(a.rss_peak_bytes / 2**20, 1),
                    rss_end_mib=None if a is None else round(a.rss_bytes / 2**20, 1),
                    rss_anon_end_mib=None if a is None else round(a.rss_anon_bytes / 2**20, 1),
                    disk_bytes=da,
                    disk_growth_bytes=None if da is None or db is None else da - db,
                )
            )
        return out

    def _result(
        self,
        rate: float,
        duration_s: float,
        t0: float,
        records: list[BatchRecord],
        found: dict[bytes, int],
        blocks: dict[int, tuple[int, int, int]],
        before: dict[str, Any],
        after: dict[str, Any],
        last_answer: float,
    ) -> RunResult:
        heights = sorted(blocks)
        times = [
            node.commit_times(heights[0], heights[-1]) if heights else {} for node in self.observer.nodes
        ]
        fallback: dict[int, float] = {}
        for per_node in times:
            for h, t in per_node.items():
                fallback[h] = min(t, fallback.get(h, t))
        submitted = committed = rejected = lost = 0
        codes: dict[str, int] = {}
        lats: list[float] = []
        by_node: dict[int, list[float]] = {}
        commits: list[tuple[float, float]] = []
        submits: list[float] = []
        last_commit = t0
        for r in records:
            for i, tx in enumerate(r.tx_ids):
                submitted += 1
                submits.append(r.due)
                height = found.get(tx)
                err = r.errors[i] if i < len(r.errors) else r.errors[0]
                if height is not None:
                    committed += 1
                    when = times[r.node].get(height, fallback.get(height))
                    if when is not None:
                        lat = (when - r.due) * 1000
                        lats.append(lat)
                        by_node.setdefault(r.node, []).append(lat)
                        commits.append((when, lat))
                        last_commit = max(last_commit, when)
                elif err:
                    rejected += 1
                    code = "no_answer" if err.startswith("no_answer") else err
                    codes[code] = codes.get(code, 0) + 1
                else:
                    lost += 1
        ours = [h for h in heights if blocks[h][0]]
        n_blocks = len(ours)
        raw_bytes = sum(blocks[h][1] for h in ours)
        wall = max(1e-9, (after["t"] - t0))
        usage = self._usage(before, after, wall)
        growths = [u.disk_growth_bytes for u in usage if u.disk_growth_bytes is not None]
        growth = sum(growths) / len(growths) if growths else None
        failed, sampled = self._sample_receipts(found)
        horizon = math.ceil(max(last_commit, last_answer) - t0) + 1
        return RunResult(
            workload=self.workload.name,
            consensus=self.target.consensus,
            nodes=len(self.target.nodes),
            offered_rate=rate,
            duration_s=duration_s,
            workers=self.o.workers,
            submitted=submitted,
            committed=committed,
            rejected=rejected,
            lost=lost,
            tps=round(committed / max(1e-9, last_commit - t0), 1),
            latency_ms=latency_summary(lats),
            rejected_by_code=codes,
            blocks=n_blocks,
            block_txs_mean=round(sum(blocks[h][0] for h in ours) / n_blocks, 1) if n_blocks else 0.0,
            block_bytes_mean=round(sum(blocks[h][2] for h in ours) / n_blocks) if n_blocks else 0.0,
            tx_bytes_mean=round(raw_bytes / max(1, sum(blocks[h][0] for h in ours)), 1),
            disk_per_tx_bytes=None if growth is None or not committed else round(growth / committed, 1),
            disk_to_raw_ratio=None if growth is None or not raw_bytes else round(growth / raw_bytes, 2),
            nodes_usage=usage,
            client_cpu_s=_client_cpu(before, after),
            txs_per_node_cpu_s=_per_cpu(committed, usage),
            send_lag_ms_max=round(max(((r.sent - r.due) * 1000 for r in records), default=0.0), 1),
            drain_s=round(max(0.0, last_commit - last_answer), 2),
            failed_receipts_sampled=failed,
            receipts_sampled=sampled,
            commit_observed_via=",".join(sorted({n.via for n in self.observer.nodes})),
            latency_by_node={
                self.target.nodes[i].name: {
                    k: v for k, v in latency_summary(xs).items() if k in ("p50", "p99")
                }
                for i, xs in sorted(by_node.items())
            },
            timeline=timeline(t0, submits, commits, horizon),
            latencies_ms=lats,
            load_average=list(load_average()),
            host_cpu=host_cpu_shares(before["host"], after["host"]),
        )

    def _sample_receipts(self, found: dict[bytes, int]) -> tuple[int, int]:
        """Receipts of a spread sample of committed transactions: (failed, sampled)."""
        ids = sorted(found)[:: max(1, len(found) // RECEIPT_SAMPLE)][:RECEIPT_SAMPLE]
        failed = 0
        with httpx.Client(base_url=self.target.urls[0], timeout=10.0) as c:
            for tx in ids:
                body = c.get(f"/v1/channels/{self.target.channel}/transactions/{tx.hex()}").json()
                if body.get("receipt", {}).get("status") != "ok":
                    failed += 1
        return failed, len(ids)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _per_cpu(committed: int, usage: list[NodeUsage]) -> float | None:
    cpu = [u.cpu_s for u in usage]
    if not cpu or any(c is None for c in cpu):
        return None
    total = sum(c for c in cpu if c is not None)
    return round(committed / total, 1) if total > 0 else None


def _client_cpu(before: dict[str, Any], after: dict[str, Any]) -> float | None:
    pairs = list(zip(before["clients"], after["clients"], strict=True))
    if not pairs or any(a is None or b is None for b, a in pairs):
        return None
    return round(float(sum(a.cpu_s - b.cpu_s for b, a in pairs)), 2)
