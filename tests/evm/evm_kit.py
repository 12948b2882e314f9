"""Shared helpers for EVM tests: the compiled fixture contracts, a tiny ABI encoder, keys,
and an in-memory chain that executes blocks mixing native and Ethereum transactions.

The contracts in fixtures/ (Token.sol, an ERC-20; Probe.sol, reverts, loops and storage)
were compiled once with solc-js 0.8.28 by fixtures/compile.js; contracts.json records the
compiler build and settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia.crypto import sha256
from consortia.execution.evm.layout import allow_key
from consortia.execution.evm.permissions import permission_record
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.execution.genesis import genesis_writes
from consortia.identity.errors import UnknownIssuer
from consortia.ledger.interface import Write
from consortia.types import Caller, ChannelConfig, ConsensusConfig, OrgConfig, Policy, Transaction, encode
from consortia.types.eth import (
    TX_TYPE_FEE_MARKET,
    decode_eth_transaction,
    eth_address,
    eth_chain_id,
    keccak256,
    sign_eth_transaction,
)

FIXTURES = Path(__file__).parent / "fixtures"
_COMPILED = json.loads((FIXTURES / "contracts.json").read_text())["contracts"]
TOKEN_CODE = bytes.fromhex(_COMPILED["Token"]["bytecode"])
PROBE_CODE = bytes.fromhex(_COMPILED["Probe"]["bytecode"])

CHAIN_ID = "test-chain"
CHANNEL = "main"
ETH_CHAIN_ID = eth_chain_id(CHAIN_ID, CHANNEL)
ALICE_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
BOB_KEY = bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f")
ALICE = eth_address(ALICE_KEY)
BOB = eth_address(BOB_KEY)
TRANSFER_TOPIC = keccak256(b"Transfer(address,address,uint256)")


# ---- ABI: just enough for the fixtures ----------------------------------------------------


def selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def address_word(address: bytes) -> bytes:
    return b"\x00" * 12 + address


def _string(text: str) -> bytes:
    raw = text.encode()
    return word(len(raw)) + raw + b"\x00" * (-len(raw) % 32)


def token_deploy_data(name: str, symbol: str, supply: int) -> bytes:
    head_name, head_symbol = _string(name), _string(symbol)
    return TOKEN_CODE + word(96) + word(96 + len(head_name)) + word(supply) + head_name + head_symbol


def call_data(signature: str, *args: int | bytes | str) -> bytes:
    """Static args (ints and 20-byte addresses) and at most one trailing string."""
    heads: list[bytes] = []
    tail = b""
    for arg in args:
        if isinstance(arg, str):
            heads.append(word(32 * len(args)))
            tail = _string(arg)
        elif isinstance(arg, bytes):
            heads.append(address_word(arg))
        else:
            heads.append(word(arg))
    return selector(signature) + b"".join(heads) + tail


def balance_slot(holder: bytes) -> int:
    """Storage slot of balanceOf[holder] in Token.sol (the mapping is state variable 3)."""
    return int.from_bytes(keccak256(address_word(holder) + word(3)), "big")


# ---- an in-memory chain ---------------------------------------------------------------------


class DictState:
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


@dataclass(frozen=True)
class _Identity:
    caller: Caller


class FakeValidator:
    """Accepts `cert|<org>|<role>|<subject>` for orgs of the config."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    def validate(self, cert_der: bytes, at_ms: int) -> _Identity:
        parts = cert_der.decode(errors="replace").split("|")
        if len(parts) != 4 or parts[0] != "cert" or self.config.org(parts[1]) is None:
            raise UnknownIssuer("not a cert of a member org")
        return _Identity(Caller(parts[1], parts[2], parts[3], sha256(cert_der)))


def admin_cert(org: str) -> bytes:
    return f"cert|{org}|admin|admin@{org}".encode()


def make_config(orgs: tuple[str, ...] = ("org1", "org2", "org3")) -> ChannelConfig:
    return ChannelConfig(
        chain_id=CHAIN_ID,
        channel=CHANNEL,
        suite="ed25519",
        orgs=[OrgConfig(name, [f"ca-{name}".encode()], [f"tlsca-{name}".encode()]) for name in orgs],
        policies={"admin": Policy(), "lifecycle": Policy(), "block_signing": Policy()},
        consensus=ConsensusConfig(),
    )


def permit_writes(*addresses: bytes, org: str = "org1") -> list[Write]:
    """Genesis-style writes putting accounts on the EVM allowlist."""
    return [Write(allow_key(a), permission_record(org), 0) for a in addresses]


class EvmChain:
    """Executes blocks one after another on a dict state, tracking Ethereum nonces."""

    def __init__(
        self, permitted: tuple[bytes, ...] = (ALICE, BOB), start_ms: int = 1_700_000_000_000
    ) -> None:
        self.config = make_config()
        self.state = DictState()
        self.state.apply(genesis_writes(self.config))
        self.state.apply(permit_writes(*permitted))
        self.executor = Executor(FakeValidator)
        self.height = 0
        self.start_ms = start_ms
        self.committed: set[bytes] = set()
        self.nonces: dict[bytes, int] = {}
        self.native_nonce = 0

    @property
    def now_ms(self) -> int:
        return self.start_ms + 1_000 * self.height

    def eth(self, key: bytes, to: bytes | None, data: bytes = b"", **kw: Any) -> TxInput:
        """A signed Ethereum transaction as a block input; the next nonce unless given."""
        sender = eth_address(key)
        nonce = kw.pop("nonce", self.nonces.get(sender, 0))
        self.nonces[sender] = nonce + 1
        raw = sign_eth_transaction(
            key,
            chain_id=kw.pop("chain_id", ETH_CHAIN_ID),
            nonce=nonce,
            gas=kw.pop("gas", 1_000_000),
            to=to,
            data=data,
            tx_type=kw.pop("tx_type", TX_TYPE_FEE_MARKET),
            **kw,
        )
        tx = decode_eth_transaction(raw)
        return TxInput(tx.hash, tx)

    def native(self, signer: bytes, contract: str, method: str, *args: Any) -> TxInput:
        self.native_nonce += 1
        tx = Transaction(
            CHAIN_ID, CHANNEL, self.native_nonce.to_bytes(8, "big"), signer, contract, method, list(args)
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
        return outcome

    def call(self, to: bytes, data: bytes, sender: bytes = ALICE) -> Any:
        return self.executor.eth_call(self.state, self.config, self.height, self.now_ms, sender, to, data)
