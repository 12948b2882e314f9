"""Real node processes on real sockets: the demo scenario, restarts, and kill -9 durability."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from consortia.cli.procs import free_port, start_node_process, stop_node_process, wait_healthy
from consortia.identity.wallet import load_signing_identity
from consortia.sdk import Client
from tests.node.conftest import make_node_config


def test_demo_scenario_end_to_end(tmp_path: Path) -> None:
    from consortia.cli.demo import run_demo

    summary = run_demo(tmp_path / "demo")
    assert summary["steps"] == 7  # created + 3 hand-overs + 3 receipts
    assert summary["proofs"] == 7
    assert summary["node_exit_codes"] == [0, 0, 0, 0]
    assert len(summary["certified_by"]) >= 3  # type: ignore[arg-type]  # 2f+1 of 4 organisations


def test_kill_9_loses_no_acknowledged_transaction(crypto_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    config = make_node_config(crypto_dir, tmp_path, port=port)
    url = f"http://127.0.0.1:{port}"
    proc = start_node_process(config, tmp_path / "node.log")
    wait_healthy(url, proc)
    admin = load_signing_identity(crypto_dir, "org1", "admin@org1")
    acknowledged: list[str] = []
    stop = threading.Event()

    def stream(worker: int) -> None:
        with Client(url, admin, "main", timeout_s=10) as client:
            i = 0
            while not stop.is_set():
                try:
                    out = client.invoke("token", "issue", f"org1/acct{worker}-{i}", 1)
                except (httpx.HTTPError, OSError):
                    return  # the node died under us: this one was never acknowledged
                if out.get("status") == "committed":
                    acknowledged.append(out["tx_id"])
                i += 1

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acknowledged) >= 60, "the stream never got going"
    proc = start_node_process(config, tmp_path / "node.log")
    try:
        wait_healthy(url, proc)
        with Client(url, None, "main") as reader:
            missing = [tx for tx in acknowledged if reader.status(tx)["status"] != "committed"]
            assert missing == [], f"{len(missing)} acknowledged transactions lost"
            info = reader.info()
            assert info["height"] >= 1
            # the restarted node keeps producing blocks
            with Client(url, admin, "main") as writer:
                assert writer.invoke("token", "issue", "org1/after", 1)["receipt"]["status"] == "ok"
    finally:
        assert stop_node_process(proc) == 0


def test_graceful_restart_resumes_from_disk(crypto_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    config = make_node_config(crypto_dir, tmp_path, port=port)
    url = f"http://127.0.0.1:{port}"
    admin = load_signing_identity(crypto_dir, "org1", "admin@org1")
    proc = start_node_process(config, tmp_path / "node.log")
    try:
        wait_healthy(url, proc)
        with Client(url, admin, "main") as client:
            for i in range(3):
                client.invoke("token", "issue", "org1/acct", 10 + i)
            before = client.info()
    finally:
        assert stop_node_process(proc) == 0
    proc = start_node_process(config, tmp_path / "node.log")
    try:
        wait_healthy(url, proc)
        with Client(url, admin, "main") as client:
            after = client.info()
            assert (after["height"], after["head_hash"], after["state_root"]) == (
                before["height"],
                before["head_hash"],
                before["state_root"],
            )
            assert client.query("token", "balance", "org1/acct") == 33
    finally:
        assert stop_node_process(proc) == 0
