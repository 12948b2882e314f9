"""Nodes in separate network namespaces, configured by host name: the same files would run
across machines. Each namespace gets its own address on a bridge and its own /etc/hosts
(ip netns exec bind-mounts /etc/netns/<ns>/hosts), so peers resolve each other by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consortia.cli.network_cmd import create_network
from consortia.identity.wallet import load_signing_identity
from consortia.sdk import Client

ORGS = ["org1", "org2", "org3"]
SUBNET = "10.231.7"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _netns_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"cprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"network namespaces cannot be created here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    bridge = _ip("link", "add", f"bp{uuid.uuid4().hex[:6]}", "type", "bridge", check=False)
    if bridge.returncode != 0:
        return f"bridges cannot be created here: {bridge.stderr.strip()}"
    _ip("link", "del", bridge.args[3], check=False)
    return None


REASON = _netns_unavailable()


@pytest.fixture
def namespaces() -> Iterator[list[tuple[str, str, str]]]:
    """(namespace, address, host name) per organisation, wired to one bridge."""
    tag = uuid.uuid4().hex[:4]
    bridge = f"cbr{tag}"
    made: list[str] = []
    hosts = [
        (f"cns{tag}{i}", f"{SUBNET}.{i + 1}", f"peer0-{org}.consortia.test") for i, org in enumerate(ORGS)
    ]
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.254/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        hosts_file = "127.0.0.1 localhost\n" + "".join(f"{addr} {name}\n" for _, addr, name in hosts)
        for i, (ns, addr, _) in enumerate(hosts):
            _ip("netns", "add", ns)
            made.append(ns)
            outer, inner = f"cv{tag}{i}", f"ci{tag}{i}"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_file)
        yield hosts
    finally:
        for ns in made:
            _ip("netns", "del", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        _ip("link", "del", bridge, check=False)


@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_nodes_in_separate_namespaces_reach_consensus_by_host_name(
    namespaces: list[tuple[str, str, str]], tmp_path: Path
) -> None:
    ports = [(7050, 7051)] * len(ORGS)  # every node may use the same ports: each has its own stack
    entries = create_network(
        tmp_path / "net", ORGS, "raft", host="0.0.0.0", ports=ports, hostnames=[h for _, _, h in namespaces]
    )
    procs = []
    try:
        for entry, (ns, _, _) in zip(entries, namespaces, strict=True):
            log = open(entry.log, "ab")  # noqa: SIM115 - closed with the process below
            procs.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        sys.executable,
                        "-m",
                        "consortia",
                        "node",
                        "start",
                        "--config",
                        entry.config,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        apis = [f"http://{addr}:7050" for _, addr, _ in namespaces]
        deadline = time.monotonic() + 60
        heads: set[tuple[int, str]] = set()
        admin = load_signing_identity(tmp_path / "net" / "crypto", "org2", "admin@org2")
        submitted = False
        while time.monotonic() < deadline:
            try:
                if not submitted:
                    with Client(apis[1], admin, "main", timeout_s=10) as client:
                        out = client.invoke("token", "issue", "org2/netns", 3)
                        submitted = out["status"] == "committed"
                infos = [httpx.get(f"{api}/v1/channels/main/info", timeout=2).json() for api in apis]
                heads = {(i["height"], i["head_hash"]) for i in infos}
                if submitted and len(heads) == 1 and next(iter(heads))[0] >= 1:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert submitted, "no transaction committed across namespaces"
        assert len(heads) == 1 and next(iter(heads))[0] >= 1, heads
        # each node found its peers by name: every node lists the other two as connected
        infos = [httpx.get(f"{api}/v1/channels/main/info", timeout=2).json() for api in apis]
        assert all(len(i["peers"]) == len(ORGS) - 1 for i in infos), infos
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
