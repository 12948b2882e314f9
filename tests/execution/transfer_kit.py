"""A real channel for transfer workloads: generated certificates, the MSP, an LMDB ledger.

`TransferNet` is what a node executes against (ledger state, `CommittedTxIds`, MSP-validated
signers), without the network: blocks of signed token transfers are built, executed with
`Executor.execute_block` and committed as the node's block processor would.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consortia.crypto import merkle_root
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.identity.cryptogen import generate_consortium
from consortia.identity.genesis import channel_config_from_crypto
from consortia.identity.msp import MSP
from consortia.identity.wallet import SigningIdentity, load_signing_identity
from consortia.ledger import Ledger
from consortia.node.committed import CommittedTxIds
from consortia.node.genesis import build_genesis
from consortia.node.runtime import open_ledger_with_genesis
from consortia.sdk import sign_transaction
from consortia.types import Block, ChannelConfig, Header, decode_envelope, encode

ORGS = ["org1", "org2", "org3", "org4"]
CHAIN_ID = "bench-chain"
CHANNEL = "main"
FUNDING = 10**12


def account(identity: SigningIdentity) -> str:
    return f"{identity.org}/{identity.name}"


class TransferNet:
    """One validating node's view of a channel whose clients all hold funded token accounts."""

    def __init__(self, root: Path, clients_per_org: int, funding: int = FUNDING) -> None:
        crypto = root / "crypto"
        generate_consortium(crypto, ORGS, clients=clients_per_org)
        self.config: ChannelConfig = channel_config_from_crypto(crypto, ORGS, CHAIN_ID, CHANNEL)
        self.now_ms = int(time.time() * 1000)  # inside the generated certificates' validity
        genesis = build_genesis(self.config, self.now_ms)
        self.ledger: Ledger = open_ledger_with_genesis(root / "data", genesis)
        self.executor = Executor(MSP)
        self.committed = CommittedTxIds(self.ledger.has_tx, self.ledger.tx_ids())
        self.clients = [
            load_signing_identity(crypto, org, f"client{i}@{org}")
            for org in ORGS
            for i in range(clients_per_org)
        ]
        self.admins = {org: load_signing_identity(crypto, org, f"admin@{org}") for org in ORGS}
        self._nonce = 0
        self._raws: dict[bytes, bytes] = {}  # tx id -> signed envelope, for the block body
        issues = [
            self.sign(self.admins[c.org], "token", "issue", [account(c), funding]) for c in self.clients
        ]
        for start in range(0, len(issues), 500):
            self.commit(issues[start : start + 500])

    @property
    def height(self) -> int:
        """The height of the next block."""
        return self.ledger.height + 1

    def sign(
        self, identity: SigningIdentity, contract: str, method: str, args: list[Any], **fields: Any
    ) -> TxInput:
        """A signed transaction, decoded as the node decodes a block's envelopes."""
        self._nonce += 1
        fields.setdefault("chain_id", CHAIN_ID)
        fields.setdefault("channel", CHANNEL)
        signed = sign_transaction(
            identity,
            fields.pop("chain_id"),
            fields.pop("channel"),
            contract,
            method,
            args,
            nonce=self._nonce.to_bytes(16, "big"),
            **fields,
        )
        env, tx = decode_envelope(signed.raw)
        self._raws[env.tx_id] = signed.raw
        return TxInput(env.tx_id, tx, True)

    def transfers(
        self, rng: random.Random, count: int, recipients: Sequence[str] = (), amount_max: int = 100
    ) -> list[TxInput]:
        """`count` transfers from random clients to random `recipients` (default: clients)."""
        clients = self.clients
        to = list(recipients) or [account(c) for c in clients]
        return [
            self.sign(rng.choice(clients), "token", "transfer", [rng.choice(to), rng.randint(1, amount_max)])
            for _ in range(count)
        ]

    def execute(self, inputs: Sequence[TxInput]) -> BlockOutcome:
        """Execute a block of `inputs` at the next height on the committed state."""
        return self.executor.execute_block(
            self.ledger.state, self.config, self.height, self.block_ms, inputs, self.committed.__contains__
        )

    @property
    def block_ms(self) -> int:
        return self.now_ms + 1_000 * self.height

    def commit(self, inputs: Sequence[TxInput]) -> BlockOutcome:
        """Execute and durably commit a block of `inputs` (no signatures on the block)."""
        outcome = self.execute(inputs)
        raws = [self._raws[i.tx_id] for i in inputs]
        prepared = self.ledger.prepare(outcome.writes)
        header = Header(
            chain_id=CHAIN_ID,
            channel=CHANNEL,
            height=self.height,
            parent_hash=self.ledger.head_hash,
            timestamp_ms=self.block_ms,
            proposer="bench",
            tx_root=merkle_root(raws),
            state_root=prepared.root,
            receipts_root=merkle_root([encode(r) for r in outcome.receipts]),
            tx_count=len(inputs),
        )
        self.ledger.commit(Block(header, raws), outcome.receipts, prepared)
        self.committed.add_committed([i.tx_id for i in inputs])
        self.config = outcome.config
        return outcome

    def close(self) -> None:
        self.ledger.close()
