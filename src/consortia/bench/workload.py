"""What a workload is: a module a user can copy to benchmark their own contract.

A workload module defines one `Workload` subclass and names an instance `WORKLOAD`
(Hyperledger Caliper's workload modules are the model). The harness calls, in order:

1. `setup(env)` once, in the coordinating process, before anything is timed: deploy
   contracts, fund accounts, write the keys a read workload will query.
2. `call(worker, index, sender)` in each client process, before the timed phase, once per
   transaction that process will submit; the harness signs the result as `sender`.
   A read-only workload implements `query(worker, index)` instead.
   A workload whose transactions are not native envelopes (pre-signed Ethereum
   transactions, say) sets `raw = True` and implements `raw_transactions(env, count)`
   instead: it signs them itself, in the client process, before the timed phase.

`call` and `query` must be cheap and pure functions of their arguments (no I/O), so that
pre-signing is fast and a run can be repeated; `raw_transactions` may read the chain first
(an account's next nonce, say). `--workload path/to/my_workload.py` loads a copy.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from consortia.bench.errors import BenchError
from consortia.identity.wallet import SigningIdentity, load_signing_identity
from consortia.sdk import Client

BUILTIN = ("transfer", "kv_write", "contract_call", "query", "erc20_transfer")


@dataclass(frozen=True)
class Call:
    """One contract invocation: what a transaction (or a query) asks for."""

    contract: str
    method: str
    args: list[Any]


@dataclass
class SetupEnv:
    """What `Workload.setup` may use: the network's nodes, identities and chain."""

    urls: list[str]
    crypto: Path
    orgs: list[str]
    channel: str
    chain_id: str
    senders: list[SigningIdentity]
    workers: int

    def client(self, identity: SigningIdentity | None = None, node: int = 0) -> Client:
        return Client(self.urls[node % len(self.urls)], identity, self.channel, self.chain_id)

    def admin(self, org: str) -> SigningIdentity:
        """Raises the identity errors of load_signing_identity when the admin is missing."""
        return load_signing_identity(self.crypto, org, f"admin@{org}")

    def invoke(self, identity: SigningIdentity, call: Call) -> Any:
        """Sign, submit and wait for the commit; returns the result.

        Raises BenchError when the transaction is refused, not committed in time, or fails.
        """
        with self.client(identity) as c:
            out = c.invoke(call.contract, call.method, *call.args)
        receipt = out.get("receipt")
        if receipt is None:
            raise BenchError(f"setup {call.contract}.{call.method} was not committed in time")
        if receipt["status"] != "ok":
            raise BenchError(f"setup {call.contract}.{call.method} failed: {receipt['error']}")
        return receipt["result"]

    def deploy(self, name: str, source: str, version: str = "1") -> None:
        """Deploy a Python contract through the lifecycle (every org's admin approves).

        Skips the deployment when exactly this source is already committed under `name`.
        Raises BenchError when a step fails.
        """
        import hashlib

        digest = hashlib.sha256(source.encode()).hexdigest()
        with self.client() as c:
            current = c.query("lifecycle", "definition", name)
        if isinstance(current, dict) and current.get("hash") == digest:
            return
        if isinstance(current, dict):
            version = f"{current.get('version', '0')}+{digest[:8]}"
        for org in self.orgs:
            self.invoke(self.admin(org), Call("lifecycle", "approve", [name, version, digest]))
        self.invoke(self.admin(self.orgs[0]), Call("lifecycle", "commit", [name, version, source]))


@dataclass(frozen=True)
class WorkerEnv:
    """What `Workload.raw_transactions` may use in client process `index` of `workers`."""

    index: int
    workers: int
    urls: list[str]
    crypto: Path
    orgs: list[str]
    channel: str
    chain_id: str


class Workload:
    """Base class of every workload; subclasses set the class attributes and `call`/`query`."""

    name: ClassVar[str] = "workload"
    description: ClassVar[str] = ""
    read_only: ClassVar[bool] = False
    raw: ClassVar[bool] = False  # transactions come from `raw_transactions`, signed already

    def setup(self, env: SetupEnv) -> None:
        """Prepare the chain before timing (default: nothing). Raises BenchError on failure."""

    def call(self, worker: int, index: int, sender: SigningIdentity) -> Call:
        """The `index`-th transaction client process `worker` submits, signed by `sender`."""
        raise NotImplementedError

    def query(self, worker: int, index: int) -> Call:
        """The `index`-th read-only query of client process `worker` (read-only workloads)."""
        raise NotImplementedError

    def raw_transactions(self, env: WorkerEnv, count: int) -> list[bytes]:
        """The next `count` signed transactions of client process `env.index` (raw workloads).

        Any transaction kind a node accepts (see `types.eth.tx_kind`); the harness finds each
        in the blocks by `types.eth.tx_id_of`. Called again before every run of a session.
        Raises BenchError when it cannot prepare them.
        """
        raise NotImplementedError


def load_workload(spec: str) -> Workload:
    """A built-in workload by name, a module by dotted name, or a `.py` file by path.

    Raises BenchError when the module cannot be imported or defines no `WORKLOAD`.
    """
    if spec in BUILTIN:
        module_name = f"consortia.bench.workloads.{spec}"
        loader: Callable[[], Any] = lambda: importlib.import_module(module_name)  # noqa: E731
    elif spec.endswith(".py"):
        path = Path(spec)
        loader = lambda: _import_file(path)  # noqa: E731
    else:
        loader = lambda: importlib.import_module(spec)  # noqa: E731
    try:
        module = loader()
    except (ImportError, OSError, SyntaxError) as exc:
        raise BenchError(f"cannot load workload {spec!r}: {exc}") from exc
    workload = getattr(module, "WORKLOAD", None)
    if not isinstance(workload, Workload):
        raise BenchError(f"workload module {spec!r} defines no WORKLOAD (a Workload instance)")
    return workload


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ImportError(f"{path} does not exist")
    name = f"consortia_bench_user_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def client_identities(crypto: Path, orgs: list[str]) -> list[SigningIdentity]:
    """Every `client*@org` identity in the crypto directory, in a stable order.

    Raises BenchError when there is none.
    """
    out: list[SigningIdentity] = []
    for org in orgs:
        users = crypto / "orgs" / org / "users"
        names = sorted(p.name for p in users.glob("client*@*") if p.is_dir()) if users.is_dir() else []
        out.extend(load_signing_identity(crypto, org, n) for n in names)
    if not out:
        raise BenchError(f"no client identities under {crypto}/orgs/*/users")
    return out


@contextmanager
def quiet_identity_errors(what: str) -> Iterator[None]:
    """Turn identity-loading problems into BenchError with context."""
    from consortia.identity.errors import IdentityError

    try:
        yield
    except (IdentityError, OSError, ValueError) as exc:
        raise BenchError(f"{what}: {exc}") from exc
