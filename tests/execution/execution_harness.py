"""A small in-memory chain for executor tests: dict state, fake identities, block helper."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from consortia.crypto import sha256
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.execution.genesis import genesis_writes
from consortia.identity.errors import BadConfig, CertificateRevoked, UnknownIssuer
from consortia.ledger.interface import Write
from consortia.types import (
    STATUS_OK,
    Caller,
    ChannelConfig,
    ConsensusConfig,
    OrgConfig,
    Policy,
    Receipt,
    Transaction,
    encode,
)

CHAIN_ID = "test-chain"
CHANNEL = "main"


class DictState:
    """A committed state: a plain dict with the StateReader interface."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self.data):
            if key >= start and (end is None or key < end):
                yield key, self.data[key]

    def apply(self, writes: list[Write]) -> None:
        for w in writes:
            if w.value is None:
                self.data.pop(w.key, None)
            else:
                self.data[w.key] = w.value


def cert(org: str, role: str, subject: str) -> bytes:
    """A fake certificate: the fake validator reads org, role and subject out of it."""
    return f"cert|{org}|{role}|{subject}".encode()


def admin(org: str) -> bytes:
    return cert(org, "admin", f"admin@{org}")


def client(org: str, i: int = 1) -> bytes:
    return cert(org, "client", f"client{i}@{org}")


@dataclass(frozen=True)
class FakeIdentity:
    caller: Caller


class FakeValidator:
    """Accepts fake certs of orgs in the config; a cert listed in an org's crls is revoked."""

    def __init__(self, config: ChannelConfig) -> None:
        for org in config.orgs:
            if b"bad-ca" in org.ca_certs:
                raise BadConfig(f"org {org.name} has an unusable CA")
        self.config = config

    def validate(self, cert_der: bytes, at_ms: int) -> FakeIdentity:
        parts = cert_der.decode(errors="replace").split("|")
        if len(parts) != 4 or parts[0] != "cert":
            raise UnknownIssuer("not a cert")
        org = self.config.org(parts[1])
        if org is None:
            raise UnknownIssuer(f"no org {parts[1]}")
        if cert_der in org.crls:
            raise CertificateRevoked("revoked")
        return FakeIdentity(Caller(parts[1], parts[2], parts[3], sha256(cert_der)))


def make_config(
    orgs: tuple[str, ...] = ("org1", "org2", "org3"), tx_steps_max: int = 100_000
) -> ChannelConfig:
    return ChannelConfig(
        chain_id=CHAIN_ID,
        channel=CHANNEL,
        suite="ed25519",
        orgs=[OrgConfig(name, [f"ca-{name}".encode()], [f"tlsca-{name}".encode()]) for name in orgs],
        policies={"admin": Policy(), "lifecycle": Policy(), "block_signing": Policy()},
        consensus=ConsensusConfig(),
        tx_steps_max=tx_steps_max,
    )


class Chain:
    """Executes blocks one after another and applies their writes to a dict state."""

    def __init__(
        self,
        config: ChannelConfig | None = None,
        validator_factory: Any = FakeValidator,
        start_ms: int = 0,
    ) -> None:
        self.config = config or make_config()
        self.state = DictState()
        self.state.apply(genesis_writes(self.config))
        self.executor = Executor(validator_factory)
        self.start_ms = start_ms
        self.height = 0
        self.committed: set[bytes] = set()
        self.nonce = 0
        self.last: BlockOutcome | None = None

    @property
    def now_ms(self) -> int:
        """The block timestamp of the current (last run) block."""
        return self.start_ms + 1_000 * self.height

    def tx(self, signer: bytes, contract: str, method: str, *args: Any, **fields: Any) -> TxInput:
        self.nonce += 1
        tx = Transaction(
            chain_id=fields.pop("chain_id", CHAIN_ID),
            channel=fields.pop("channel", CHANNEL),
            nonce=self.nonce.to_bytes(8, "big"),
            signer=signer,
            contract=contract,
            method=method,
            args=list(args),
            **fields,
        )
        return TxInput(sha256(encode(tx)), tx)

    def run(self, *txs: TxInput) -> BlockOutcome:
        self.height += 1
        outcome = self.executor.execute_block(
            self.state, self.config, self.height, self.now_ms, list(txs), self.committed.__contains__
        )
        self.state.apply(outcome.writes)
        self.committed.update(t.tx_id for t in txs)
        self.config = outcome.config
        self.last = outcome
        return outcome

    def call(self, signer: bytes, contract: str, method: str, *args: Any) -> Receipt:
        return self.run(self.tx(signer, contract, method, *args)).receipts[0]

    def ok(self, signer: bytes, contract: str, method: str, *args: Any) -> Any:
        receipt = self.call(signer, contract, method, *args)
        assert receipt.status == STATUS_OK, receipt.error
        return receipt.result

    def query(self, contract: str, method: str, *args: Any) -> Any:
        caller = Caller("org1", "client", "client1@org1", b"")
        return self.executor.query(
            self.state, self.config, self.height, self.now_ms, caller, contract, method, list(args)
        )


SCENARIO_CONTRACT = """
class Registry(Contract):
    def register(self, owner, items):
        for item in items:
            key = self.ctx.composite_key("item", owner, item)
            self.ctx.put(key, {"owner": owner, "tags": {"b": 1, "a": 2}})
        self.ctx.emit("Registered", {"owner": owner, "count": len(items)})
        return [k for k, _ in self.ctx.prefix(self.ctx.composite_key("item", owner))]

    def burn(self):
        while True:
            self.ctx.get("x")
"""


def scenario_digest() -> str:
    """Run a fixed multi-block scenario; the hex digest of every receipt and write."""
    from consortia.execution.system.lifecycle import source_hash_hex

    chain = Chain()
    outcomes = []
    digest = source_hash_hex(SCENARIO_CONTRACT)
    outcomes.append(
        chain.run(
            chain.tx(admin("org1"), "token", "issue", "org1/client1@org1", 1_000),
            chain.tx(admin("org1"), "lifecycle", "approve", "registry", "1", digest),
            chain.tx(admin("org3"), "lifecycle", "approve", "registry", "1", digest),
            chain.tx(admin("org2"), "lifecycle", "commit", "registry", "1", SCENARIO_CONTRACT),
            chain.tx(admin("org2"), "config", "propose", {"op": "set_tx_steps_max", "tx_steps_max": 5_000}),
        )
    )
    names = sorted({f"item{i * 7919 % 97}" for i in range(40)})
    outcomes.append(
        chain.run(
            chain.tx(client("org1"), "registry", "register", "alice", names),
            chain.tx(admin("org3"), "config", "approve", 1),
            chain.tx(client("org2"), "registry", "burn"),
            chain.tx(client("org1"), "token", "transfer", "org2/client1@org2", 7),
            chain.tx(client("org2"), "token", "transfer", "org1/client1@org1", 70),
        )
    )
    blob = encode([[o.receipts, [list(w) for w in o.writes], o.config] for o in outcomes])
    return sha256(blob).hex()
