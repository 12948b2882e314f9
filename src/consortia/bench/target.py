"""The network under test: its nodes' API URLs, process ids and data directories.

`from_network_dir` reads what `consortia network up` recorded; `stand_up` creates a network
in a directory of its own, starts it, and stops it again when the benchmark is done.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from consortia.bench.errors import BenchError

CLIENTS_PER_ORG = 4  # more senders spread the per-sender pool limit and the hot balance keys


@dataclass(frozen=True)
class TargetNode:
    name: str
    api: str
    pid: int  # 0 when unknown (a node on another host): no CPU or memory figures
    data_dir: Path | None


@dataclass
class Target:
    consensus: str
    nodes: list[TargetNode]
    crypto: Path
    orgs: list[str]
    channel: str = "main"
    chain_id: str = ""
    base: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [n.api for n in self.nodes]

    def connect(self) -> None:
        """Read the chain id; raises BenchError when the first node does not answer."""
        import httpx

        try:
            info = httpx.get(f"{self.nodes[0].api}/v1/channels/{self.channel}/info", timeout=5.0).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BenchError(f"cannot reach {self.nodes[0].api}: {exc}") from exc
        self.chain_id = info["chain_id"]
        if self.consensus == "unknown":
            self.consensus = str(info.get("consensus", {}).get("engine", "unknown"))


def from_network_dir(base: Path) -> Target:
    """A network started by `consortia network up --dir BASE`.

    Raises BenchError when BASE holds no network.
    """
    from consortia.cli.network_cmd import load_state
    from consortia.node.config import ConfigError, load_config

    try:
        consensus, entries = load_state(base)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    nodes = []
    for e in entries:
        try:
            cfg = load_config(Path(e.config))
            data_dir: Path | None = cfg.path(cfg.node.data_dir)
        except ConfigError:
            data_dir = None
        nodes.append(TargetNode(e.name, e.api, e.pid, data_dir))
    orgs = sorted({e.org for e in entries} | _crypto_orgs(base / "crypto"), key=_org_order)
    target = Target(consensus, nodes, base / "crypto", orgs, base=base)
    target.connect()
    return target


def from_url(url: str, crypto: Path, pid: int = 0, data_dir: Path | None = None) -> Target:
    """One node reached by URL (its consortium's crypto directory signs the load)."""
    target = Target("unknown", [TargetNode("node", url.rstrip("/"), pid, data_dir)], crypto, [])
    target.orgs = sorted(_crypto_orgs(crypto), key=_org_order)
    if not target.orgs:
        raise BenchError(f"no organisations under {crypto}/orgs")
    target.connect()
    return target


def _crypto_orgs(crypto: Path) -> set[str]:
    orgs = crypto / "orgs"
    return {p.name for p in orgs.iterdir() if p.is_dir()} if orgs.is_dir() else set()


def _org_order(org: str) -> tuple[int, str]:
    digits = "".join(ch for ch in org if ch.isdigit())
    return (int(digits) if digits else 0, org)


def add_clients(crypto: Path, orgs: list[str], per_org: int) -> None:
    """Issue client identities client0..client{per_org-1} that do not exist yet."""
    from consortia.identity.cryptogen import add_identity

    for org in orgs:
        for i in range(per_org):
            if not (crypto / "orgs" / org / "users" / f"client{i}@{org}").exists():
                add_identity(crypto, org, f"client{i}@{org}")


@contextmanager
def stand_up(consensus: str, orgs: int, base: Path | None = None, wait_ms: int = 50) -> Iterator[Target]:
    """Create and start a network (solo: one node, the others orgs without nodes); stop it after.

    The directory is removed afterwards unless `base` was given. Raises BenchError when the
    network does not come up.
    """
    from consortia.cli.network_cmd import create_network, save_state, start_network, stop_network

    if consensus == "pbft" and orgs < 4:
        raise BenchError("pbft needs at least 4 organisations")
    owned = base is None
    root = Path(tempfile.mkdtemp(prefix=f"consortia-bench-{consensus}-")) if base is None else base
    org_names = [f"org{i}" for i in range(1, orgs + 1)]
    started = False
    try:
        try:
            entries = create_network(root, org_names, consensus, wait_ms=wait_ms)
            add_clients(root / "crypto", org_names, CLIENTS_PER_ORG)
            try:
                start_network(root, entries)
            finally:
                save_state(root, consensus, entries)
                started = True
        except (RuntimeError, ValueError, OSError) as exc:
            raise BenchError(
                f"the {consensus} network did not start: {exc} (logs under {root}/nodes)"
            ) from exc
        yield from_network_dir(root)
    finally:
        if started:
            stop_network(root)
        if owned:
            shutil.rmtree(root, ignore_errors=True)
