"""A real consortia network driven by real Ethereum clients (web3.py, ethers.js, solc-js).

`network_up` runs `consortia network up` (one node process per organisation) and tears it
down; `permitted_accounts` gives Ethereum keys allowed to send transactions; `npm_install`
installs the pinned npm packages of tests/evm/clients once (`npm ci`, reused across runs
while package-lock.json is unchanged); `compile_contracts` compiles the Solidity fixtures
with solc-js; `run_script` runs one of the node scripts of tests/evm/clients and returns
the JSON it printed.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortia.identity.wallet import load_signing_identity
from consortia.sdk import Client
from consortia.types.eth import eth_address, keccak256

CLIENTS_DIR = Path(__file__).parent / "clients"
FIXTURES_DIR = Path(__file__).parent / "fixtures"
NODE_MODULES = CLIENTS_DIR / "node_modules"
_INSTALL_STAMP = NODE_MODULES / ".consortia-installed"
_INSTALL_LOCK = CLIENTS_DIR / ".install.lock"
SCRIPT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RpcNode:
    name: str
    org: str
    api: str
    jsonrpc: str
    jsonrpc_ws: str


@dataclass
class EthNetwork:
    base: Path
    nodes: list[RpcNode]
    orgs: list[str]
    generated_keys: list[Path]  # key files of accounts `network up` put on the allowlist
    keys: dict[str, bytes] = field(default_factory=dict)  # account name -> private key


# ---- the network ------------------------------------------------------------------------


def consortia_cli(*args: str, timeout_s: float = 180.0) -> str:
    """Run the `consortia` command (this checkout's code) and return its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "consortia", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=_python_env(),
    )
    if done.returncode != 0:
        raise AssertionError(f"consortia {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def _python_env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": src + (os.pathsep + path if path else "")}


@contextmanager
def network_up(base: Path, orgs: int = 3, consensus: str = "raft") -> Iterator[EthNetwork]:
    """A running network of `orgs` nodes, stopped with `consortia network down` on exit."""
    try:
        status = json.loads(
            consortia_cli(
                "network", "up", "--orgs", str(orgs), "--consensus", consensus, "--dir", str(base), "--json"
            )
        )
        nodes = [_rpc_node(n) for n in status["nodes"]]
        generated = [Path(a["key"]) for a in status["eth_accounts"]]
        yield EthNetwork(base, nodes, [f"org{i}" for i in range(1, orgs + 1)], generated)
    finally:
        if (base / "network.json").exists():
            consortia_cli("network", "down", "--dir", str(base))


def _rpc_node(status: dict[str, Any]) -> RpcNode:
    """A node's JSON-RPC URLs as `network status --json` lists them."""
    return RpcNode(
        str(status["name"]), str(status["org"]), str(status["api"]), status["jsonrpc"], status["jsonrpc_ws"]
    )


def permitted_accounts(net: EthNetwork, names: list[str]) -> dict[str, bytes]:
    """Ethereum keys (account name -> private key) that may send transactions on `net`.

    The keys `network up` generated (already on the allowlist) come first; any further
    account is bound to an org in turn and put on the channel's EVM allowlist by a config
    proposal of org1's admin that a majority of org admins approves.
    """
    keys: dict[str, bytes] = {}
    api = net.nodes[0].api
    crypto = net.base / "crypto"
    for i, name in enumerate(names):
        if i < len(net.generated_keys):
            keys[name] = bytes.fromhex(net.generated_keys[i].read_text().strip()[2:])
            continue
        key = keccak256(f"consortia client test account {name}".encode())
        org = net.orgs[i % len(net.orgs)]
        update = {"op": "evm_permit", "address": "0x" + eth_address(key).hex(), "org": org}
        with Client(api, load_signing_identity(crypto, "org1", "admin@org1"), "main") as admin:
            out = admin.invoke("config", "propose", update)
        assert out["receipt"]["status"] == "ok", out
        proposal = out["receipt"]["result"]
        approvers = iter(net.orgs[1:])
        while not any(e["name"] == "ConfigUpdated" for e in out["receipt"]["events"]):
            approver = next(approvers, None)
            if approver is None:
                raise AssertionError(f"the permit of {name} was never applied")
            with Client(api, load_signing_identity(crypto, approver, f"admin@{approver}"), "main") as admin:
                out = admin.invoke("config", "approve", proposal)
            assert out["receipt"]["status"] == "ok", out
        keys[name] = key
    net.keys.update(keys)
    return keys


def unpermitted_key(name: str) -> bytes:
    return keccak256(f"consortia client test stranger {name}".encode())


# ---- npm packages and solc-js ---------------------------------------------------------------


def npm_install() -> None:
    """`npm ci` the pinned packages of tests/evm/clients unless already installed from this lock.

    Raises AssertionError (a failed test, never a skip) when node or npm is missing or the
    install fails. A file lock keeps parallel test workers from installing at once.
    """
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise AssertionError(
                f"{tool} is not on PATH: the Ethereum client tests need Node.js 18+ and npm "
                "(e.g. `apt-get install nodejs npm`) to install ethers and solc from npm"
            )
    wanted = _lock_digest()
    with _INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _INSTALL_STAMP.exists() and _INSTALL_STAMP.read_text() == wanted:
            return
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=CLIENTS_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise AssertionError(f"npm ci in {CLIENTS_DIR} failed ({done.returncode}):\n{done.stderr}")
        _INSTALL_STAMP.write_text(wanted)


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((CLIENTS_DIR / name).read_bytes())
    return digest.hexdigest()


def run_script(script: str, *args: str, timeout_s: float = SCRIPT_TIMEOUT_S) -> Any:
    """Run `node <script> args...` with the installed packages; returns the JSON it printed."""
    npm_install()
    done = subprocess.run(
        ["node", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        cwd=CLIENTS_DIR,
    )
    if done.returncode != 0:
        raise AssertionError(f"node {script} failed ({done.returncode}):\n{done.stderr}\n{done.stdout}")
    return json.loads(done.stdout)


@functools.cache
def compile_contracts() -> dict[str, dict[str, Any]]:
    """Token (ERC-20) and Probe (indexed events, reverts) compiled by solc-js with
    fixtures/compile.js: name -> {"abi", "bytecode", "deployed"} (hex without 0x)."""
    out = run_script(
        str(FIXTURES_DIR / "compile.js"), *(str(FIXTURES_DIR / f) for f in ("Token.sol", "Probe.sol"))
    )
    contracts: dict[str, dict[str, Any]] = out["contracts"]
    return contracts
