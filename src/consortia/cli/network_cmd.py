"""`consortia network up|status|down`: a whole consortium on this machine, one node per org.

`up` generates certificates and the channel's genesis block, writes one `node.toml` per
organisation (peers addressed by host name, so the same files work across machines),
starts one node process per organisation, waits until every node is healthy and agrees on
the chain head, then records the processes in `DIR/network.json` and returns.

Each organisation's client (`client0@<org>`) gets an Ethereum key at
`DIR/crypto/orgs/<org>/users/client0@<org>/eth.key` whose account the genesis block puts on
the channel's EVM allowlist, so wallets and tools can use the network at once; `status`
lists every node's JSON-RPC URLs, the channel's Ethereum chain id and those key files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import tomli_w
import typer
from rich.table import Table

from consortia.cli.common import JSON_OPT, console, fail, print_json

network_app = typer.Typer(help="Run a whole consortium network on this machine.", no_args_is_help=True)

ENGINES = ("solo", "raft", "pbft")
STATE_FILE = "network.json"
GENESIS_FILE = "genesis.block"
CRYPTO_DIR = "crypto"


@dataclass
class NodeEntry:
    name: str
    org: str
    api: str
    p2p: str
    config: str
    log: str
    pid: int = 0


def _orgs(count: int) -> list[str]:
    return [f"org{i}" for i in range(1, count + 1)]


def create_network(
    base: Path,
    orgs: list[str],
    consensus: str,
    host: str = "127.0.0.1",
    hostname: str = "localhost",
    ports: list[tuple[int, int]] | None = None,
    chain_id: str = "consortia-net",
    channel: str = "main",
    wait_ms: int = 50,
    hostnames: list[str] | None = None,
    eth_chain_id: int | None = None,
) -> list[NodeEntry]:
    """Write crypto, genesis and every node's config under `base`; start nothing.

    Nodes bind `host`; peers reach each other at `hostname` (or `hostnames[i]` for the i-th
    organisation's node), so the files also describe nodes on different machines. The
    channel's Ethereum chain id is `eth_chain_id`, or derived from `chain_id` and `channel`
    when None; every client's Ethereum account is on the genesis EVM allowlist.
    Raises ValueError for an unknown engine, IdentityError (e.g. BadArgument for a chain
    id outside 1..2**53 - 1) and OSError.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from consortia.cli.procs import free_port
    from consortia.identity.cryptogen import generate_consortium
    from consortia.identity.genesis import channel_config_from_crypto
    from consortia.node.genesis import build_genesis, write_genesis
    from consortia.types import BlockLimits, ConsensusConfig, Policy, Validator

    if consensus not in ENGINES:
        raise ValueError(f"--consensus must be one of {', '.join(ENGINES)}")
    crypto = base / CRYPTO_DIR
    generate_consortium(crypto, orgs)
    ports = ports or [(free_port(host), free_port(host)) for _ in orgs]
    names = [f"peer0.{org}" for org in orgs]
    hosts = hostnames or [hostname] * len(orgs)
    validators = []
    for org, name, (_, p2p_port), peer_host in zip(orgs, names, ports, hosts, strict=True):
        pem = (crypto / "orgs" / org / "nodes" / name / "signcert.pem").read_bytes()
        der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
        validators.append(Validator(name, org, der, f"{peer_host}:{p2p_port}"))
    config = channel_config_from_crypto(
        crypto, orgs, chain_id, channel, engine=consensus, eth_chain_id=eth_chain_id
    )
    if consensus == "solo":
        validators = validators[:1]
    policies = dict(config.policies)
    n = len(validators)
    if consensus == "pbft":
        f = (n - 1) // 3
        policies["block_signing"] = Policy(k=2 * f + 1, role="node")
    config = msgspec.structs.replace(
        config,
        consensus=ConsensusConfig(
            engine=consensus, params={}, validators=sorted(validators, key=lambda v: v.name)
        ),
        policies=policies,
        block=BlockLimits(wait_ms=wait_ms),
    )
    genesis = base / GENESIS_FILE
    write_genesis(build_genesis(config, int(time.time() * 1000)), genesis)
    entries = []
    members = orgs if consensus != "solo" else orgs[:1]
    for org, name, (api_port, p2p_port), peer_host in zip(members, names, ports, hosts, strict=False):
        node_dir = base / "nodes" / name
        node_dir.mkdir(parents=True, exist_ok=True)
        src = (crypto / "orgs" / org / "nodes" / name).resolve()
        doc: dict[str, Any] = {
            "node": {
                "name": name,
                "org": org,
                "data_dir": "data",
                "cert": str(src / "signcert.pem"),
                "key": str(src / "signkey.pem"),
                "genesis": str(genesis.resolve()),
            },
            "api": {"host": host, "port": api_port},
        }
        if consensus != "solo":
            doc["p2p"] = {
                "host": host,
                "port": p2p_port,
                "tls_cert": str(src / "tls.crt"),
                "tls_key": str(src / "tls.key"),
            }
        (node_dir / "node.toml").write_text(tomli_w.dumps(doc))
        entries.append(
            NodeEntry(
                name,
                org,
                f"http://{host}:{api_port}",
                f"{peer_host}:{p2p_port}",
                str(node_dir / "node.toml"),
                str(node_dir / "node.log"),
            )
        )
    return entries


def save_state(base: Path, consensus: str, entries: list[NodeEntry]) -> None:
    doc = {"consensus": consensus, "nodes": [asdict(e) for e in entries]}
    (base / STATE_FILE).write_text(json.dumps(doc, indent=2))


def load_state(base: Path) -> tuple[str, list[NodeEntry]]:
    """Raises ValueError when `base` holds no network started by `consortia network up`."""
    try:
        doc = json.loads((base / STATE_FILE).read_text())
        return doc["consensus"], [NodeEntry(**n) for n in doc["nodes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{base} holds no network (no readable {STATE_FILE}): {exc}") from exc


def start_network(
    base: Path, entries: list[NodeEntry], timeout_s: float = 90.0
) -> list[subprocess.Popen[bytes]]:
    """Start every node process and wait until all are healthy and agree on the chain head.

    Raises RuntimeError when a node exits or the nodes do not agree within `timeout_s`.
    """
    from consortia.cli.procs import start_node_process, wait_healthy

    procs = []
    for e in entries:
        proc = start_node_process(Path(e.config), Path(e.log))
        e.pid = proc.pid
        procs.append(proc)
    deadline = time.monotonic() + timeout_s
    for e, proc in zip(entries, procs, strict=True):
        wait_healthy(e.api, proc, max(1.0, deadline - time.monotonic()))
    wait_in_consensus(entries, max(1.0, deadline - time.monotonic()))
    return procs


def jsonrpc_urls(api: str) -> tuple[str, str]:
    """The Ethereum JSON-RPC URLs of a node whose API is at `api`: HTTP and WebSocket."""
    scheme, sep, rest = api.rstrip("/").partition("://")
    ws_scheme = "wss" if scheme == "https" else "ws"
    return f"{api.rstrip('/')}/jsonrpc", f"{ws_scheme}{sep}{rest}/jsonrpc"


def eth_accounts(base: Path) -> list[dict[str, str]]:
    """The Ethereum accounts of the network's client identities, by org then identity:
    org, identity, address (EIP-55), key (path of the 0600 private key file) and
    address_file. Empty when `base` holds no crypto material."""
    from consortia.identity.ethkeys import ETH_ADDRESS, ETH_KEY, org_eth_accounts
    from consortia.types.eth import checksum_address

    orgs_dir = base / CRYPTO_DIR / "orgs"
    if not orgs_dir.is_dir():
        return []
    out = []
    for org in sorted(p.name for p in orgs_dir.iterdir() if p.is_dir()):
        for name, address in org_eth_accounts(base / CRYPTO_DIR, org):
            user = orgs_dir / org / "users" / name
            out.append(
                {
                    "org": org,
                    "identity": name,
                    "address": checksum_address(address),
                    "key": str((user / ETH_KEY).resolve()),
                    "address_file": str((user / ETH_ADDRESS).resolve()),
                }
            )
    return out


def network_eth_chain_id(base: Path) -> int | None:
    """The Ethereum chain id of the network's channel, read from its genesis block."""
    from consortia.node.genesis import GenesisError, read_genesis
    from consortia.types import ChannelConfig, decode
    from consortia.types.eth import eth_chain_id_of

    try:
        genesis = read_genesis(base / GENESIS_FILE)
    except GenesisError:
        return None
    return eth_chain_id_of(decode(genesis.txs[0], ChannelConfig))


def network_report(base: Path, consensus: str, entries: list[NodeEntry]) -> dict[str, Any]:
    """What `network up` and `network status` print: nodes, chain id, Ethereum accounts."""
    return {
        "consensus": consensus,
        "eth_chain_id": network_eth_chain_id(base),
        "nodes": [node_status(e) for e in entries],
        "eth_accounts": eth_accounts(base),
    }


def node_status(entry: NodeEntry, channel: str = "main") -> dict[str, Any]:
    jsonrpc, jsonrpc_ws = jsonrpc_urls(entry.api)
    out: dict[str, Any] = {
        "name": entry.name,
        "org": entry.org,
        "api": entry.api,
        "jsonrpc": jsonrpc,
        "jsonrpc_ws": jsonrpc_ws,
        "p2p": entry.p2p,
        "pid": entry.pid,
        "alive": _alive(entry.pid),
    }
    try:
        info = httpx.get(f"{entry.api}/v1/channels/{channel}/info", timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        out.update(healthy=False)
        return out
    consensus = info.get("consensus", {})
    out.update(
        healthy=True,
        height=info["height"],
        head_hash=info["head_hash"],
        state_root=info["state_root"],
        engine=consensus.get("engine"),
        leader=consensus.get("leader", consensus.get("primary")),
        view=consensus.get("view", consensus.get("term")),
        consensus=consensus,
        peers=info.get("peers", []),
        halted=info.get("halted"),
    )
    return out


def wait_in_consensus(entries: list[NodeEntry], timeout_s: float) -> None:
    """Wait until every node reports the same height and head. Raises RuntimeError on timeout."""
    deadline = time.monotonic() + timeout_s
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = [node_status(e) for e in entries]
        heads = {(s.get("height"), s.get("head_hash")) for s in last if s.get("healthy")}
        if all(s.get("healthy") and s.get("leader") for s in last) and len(heads) == 1:
            return
        time.sleep(0.2)
    raise RuntimeError(f"nodes did not reach consensus within {timeout_s:.0f} s: {last}")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop_network(base: Path, timeout_s: float = 20.0) -> list[str]:
    """SIGTERM every node (graceful), SIGKILL stragglers; returns the names stopped."""
    _, entries = load_state(base)
    stopped = []
    for e in entries:
        if _alive(e.pid):
            os.kill(e.pid, signal.SIGTERM)
            stopped.append(e.name)
    deadline = time.monotonic() + timeout_s
    for e in entries:
        while _alive(e.pid) and time.monotonic() < deadline:
            _reap(e.pid)
            time.sleep(0.05)
        if _alive(e.pid):
            os.kill(e.pid, signal.SIGKILL)
            _reap(e.pid)
    return stopped


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


@network_app.command("up")
def up(
    orgs: int = typer.Option(4, "--orgs", help="Number of organisations (one node each)."),
    consensus: str = typer.Option("pbft", "--consensus", help="solo, raft or pbft."),
    dir: Path = typer.Option(..., "--dir", help="Directory for the whole network (must not exist yet)."),
    eth_chain_id: int | None = typer.Option(
        None,
        "--eth-chain-id",
        help="EIP-155 chain id wallets sign for, 1..2**53-1 (default: derived from the channel).",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Generate crypto and config, start one node per organisation, wait for consensus.

    Each organisation's client gets an Ethereum key already on the channel's allowlist.
    """
    from consortia.identity.errors import IdentityError
    from consortia.types.eth import BadEthChainId, check_eth_chain_id

    if eth_chain_id is not None:
        try:
            check_eth_chain_id(eth_chain_id)
        except BadEthChainId as exc:
            fail(f"--eth-chain-id: {exc}")
    if orgs < 1 or orgs > 64:
        fail("--orgs must be within 1..64")
    if consensus == "pbft" and orgs < 4:
        fail("pbft needs at least 4 organisations (3f+1 with f >= 1)")
    if (dir / STATE_FILE).exists():
        fail(f"{dir} already holds a network; run `consortia network down --dir {dir}` or pick another")
    try:
        with console.status(f"starting a {orgs}-organisation {consensus} network..."):
            entries = create_network(dir, _orgs(orgs), consensus, eth_chain_id=eth_chain_id)
            try:
                start_network(dir, entries)
            finally:
                save_state(dir, consensus, entries)
    except IdentityError as exc:
        fail(str(exc))
    except (RuntimeError, ValueError, OSError) as exc:
        logs = dir / "nodes"
        fail(f"{exc}\n(see the node logs under {logs}; stop with `consortia network down --dir {dir}`)")
    report = network_report(dir, consensus, entries)
    if as_json:
        print_json(report)
        return
    _print_status(report)


@network_app.command("status")
def status(dir: Path = typer.Option(..., "--dir"), as_json: bool = JSON_OPT) -> None:
    """Height, head, state root, leader/view, peers and JSON-RPC URLs of every node; the
    Ethereum chain id and each organisation's Ethereum key file."""
    from consortia.identity.errors import IdentityError

    try:
        consensus, entries = load_state(dir)
        report = network_report(dir, consensus, entries)
    except (ValueError, IdentityError) as exc:
        fail(str(exc))
    if as_json:
        print_json(report)
    else:
        _print_status(report)


@network_app.command("down")
def down(dir: Path = typer.Option(..., "--dir")) -> None:
    """Stop every node of the network cleanly."""
    try:
        stopped = stop_network(dir)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"stopped {len(stopped)} node(s)")


def _print_status(report: dict[str, Any]) -> None:
    nodes: list[dict[str, Any]] = report["nodes"]
    table = Table(title=f"{report['consensus']} network")
    for col in ("node", "api", "height", "head", "state root", "leader", "view/term", "peers"):
        table.add_column(col)
    for n in nodes:
        if not n.get("healthy"):
            table.add_row(n["name"], n["api"], "[red]down[/red]", "", "", "", "", "")
            continue
        table.add_row(
            n["name"],
            n["api"],
            str(n["height"]),
            n["head_hash"][:12],
            n["state_root"][:12],
            str(n.get("leader")),
            str(n.get("view")),
            str(len(n.get("peers", []))),
        )
    console.print(table)
    # Plain lines, not table cells: URLs and key paths must print whole, ready to copy.
    for n in nodes:
        console.print(
            f"{n['name']} Ethereum JSON-RPC: {n['jsonrpc']}  WebSocket: {n['jsonrpc_ws']}", soft_wrap=True
        )
    if report["eth_chain_id"] is not None:
        console.print(f"Ethereum chain id: {report['eth_chain_id']}")
    for a in report["eth_accounts"]:
        console.print(f"{a['org']} account {a['address']}  private key: {a['key']}", soft_wrap=True)
