"""A real multi-process network for fault tests: start, load, kill, partition, compare."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from consortia.cli.network_cmd import NodeEntry, create_network, node_status, save_state, start_network
from consortia.cli.procs import start_node_process, wait_healthy
from consortia.identity.wallet import load_signing_identity
from consortia.sdk import Client


class Cluster:
    def __init__(self, base: Path, consensus: str, orgs: int = 4) -> None:
        self.base = base
        self.consensus = consensus
        self.entries: list[NodeEntry] = create_network(
            base, [f"org{i}" for i in range(1, orgs + 1)], consensus
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        start_network(self.base, self.entries)
        save_state(self.base, self.consensus, self.entries)

    def entry(self, name: str) -> NodeEntry:
        return next(e for e in self.entries if e.name == name)

    def status(self) -> list[dict[str, Any]]:
        return [node_status(e) for e in self.entries]

    def leader(self) -> str:
        for s in self.status():
            if s.get("healthy") and s.get("leader"):
                return str(s["leader"])
        raise RuntimeError("no node knows a leader")

    def kill(self, name: str) -> None:
        os.kill(self.entry(name).pid, signal.SIGKILL)
        _reap(self.entry(name).pid)

    def pause(self, name: str) -> None:
        os.kill(self.entry(name).pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.entry(name).pid, signal.SIGCONT)

    def restart(self, name: str) -> None:
        e = self.entry(name)
        proc = start_node_process(Path(e.config), Path(e.log))
        e.pid = proc.pid
        self.procs[name] = proc
        wait_healthy(e.api, proc, 60)

    def stop_all(self) -> None:
        for e in self.entries:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.kill(e.pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + 20
        for e in self.entries:
            while _alive(e.pid) and time.monotonic() < deadline:
                _reap(e.pid)
                time.sleep(0.05)
            if _alive(e.pid):
                os.kill(e.pid, signal.SIGKILL)
                _reap(e.pid)

    def wait_converged(self, timeout_s: float = 60.0, min_height: int = 0) -> list[dict[str, Any]]:
        """Every node at one height, head and state root. Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout_s
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            last = self.status()
            views = {(s.get("height"), s.get("head_hash"), s.get("state_root")) for s in last}
            if all(s.get("healthy") for s in last) and len(views) == 1 and last[0]["height"] >= min_height:
                return last
            time.sleep(0.3)
        raise AssertionError(f"nodes did not converge: {[(s['name'], s.get('height')) for s in last]}")


class Load:
    """Clients sending signed transfers to every node, recording what was acknowledged."""

    def __init__(self, cluster: Cluster, workers_per_node: int = 1) -> None:
        self.cluster = cluster
        self.acknowledged: list[str] = []
        self.errors = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(e, w), daemon=True)
            for e in cluster.entries
            for w in range(workers_per_node)
        ]
        self._lock = threading.Lock()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self, entry: NodeEntry, worker: int) -> None:
        crypto = self.cluster.base / "crypto"
        admin = load_signing_identity(crypto, entry.org, f"admin@{entry.org}")
        i = 0
        while not self._stop.is_set():
            try:
                with Client(entry.api, admin, "main", timeout_s=15) as client:
                    while not self._stop.is_set():
                        out = client.invoke("token", "issue", f"{entry.org}/w{worker}-{i}", 1)
                        i += 1
                        if out.get("status") == "committed" and out["receipt"]["status"] == "ok":
                            with self._lock:
                                self.acknowledged.append(out["tx_id"])
            except Exception:  # a node under test may die mid-call: count and retry
                self.errors += 1
                time.sleep(0.2)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_more(self, n: int, timeout_s: float = 60.0) -> None:
        target = self.count() + n
        deadline = time.monotonic() + timeout_s
        while self.count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"progress stalled: {self.count()} of {target} acknowledged")
            time.sleep(0.1)


def all_committed(cluster: Cluster, tx_ids: list[str]) -> list[str]:
    """Acknowledged transactions missing from any node's ledger."""
    missing = []
    for e in cluster.entries:
        with Client(e.api, None, "main") as reader:
            for tx in tx_ids:
                if reader.status(tx)["status"] != "committed":
                    missing.append(f"{e.name}:{tx[:12]}")
    return missing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
