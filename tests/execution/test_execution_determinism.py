"""Blocks of random transfers, good and bad, give the same bytes as they always have.

`run_random_chain` runs seeded blocks mixing valid transfers with every kind of failure
(insufficient funds, bad arguments, unknown methods and contracts, transfers through a user
contract, running out of steps after a config change, a revocation mid-block) and invalid
transactions (replays, in-block duplicates, wrong chain or channel, expired, malformed,
unknown or revoked signers). The digests below were recorded from the straightforward
executor before its hot path was optimised: every receipt, write, config and state byte
must stay the same.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from execution_harness import Chain, FakeValidator, admin, cert, client, make_config
from transfer_kit import TransferNet, account

from consortia.crypto import merkle_root, sha256
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.execution.system.lifecycle import source_hash_hex
from consortia.node.committed import CommittedTxIds
from consortia.types import STATUS_FAILED, STATUS_INVALID, STATUS_OK, Receipt, decode, encode

ORGS = ("org1", "org2", "org3")
CLIENTS = 6
REVOKED_AT_GENESIS = client("org3", 5)

RELAY = """
class Relay(Contract):
    def pay(self, to, amount):
        return self.ctx.call("token", "transfer", to, amount)

    def pay_then_fail(self, to, amount):
        self.ctx.call("token", "transfer", to, amount)
        raise ContractError("changed my mind")

    def who(self):
        self.ctx.caller.attributes["seen"] = "yes"
        return [self.ctx.caller.org, self.ctx.caller.subject, self.ctx.caller.attributes]
"""

# Recorded from the executor before the transfer hot path was optimised.
GOLDEN = {
    1: "515853503164f2cf64b08248eeb6bb29d04e11bb0a2814eb7382dc771ee5caea",
    2: "6536a746e4d9f22d5c98896a5f611cc673997233eebb2c651379c5faf9762b4a",
    3: "29ad8bf4fb345cad5f631f492f99cd59ad45deef27fab11b5e46f27c6ed857a9",
}


def _accounts() -> list[str]:
    return [f"{org}/client{i}@{org}" for org in ORGS for i in range(CLIENTS)]


def _signers() -> list[bytes]:
    return [client(org, i) for org in ORGS for i in range(CLIENTS)]


class _Workload:
    """Random transactions over a Chain, remembering committed ones to replay."""

    def __init__(self, chain: Chain, rng: random.Random) -> None:
        self.chain, self.rng = chain, rng
        self.committed: list[TxInput] = []

    def transfer(self, signer: bytes, *args: Any, **fields: Any) -> TxInput:
        return self.chain.tx(signer, "token", "transfer", *args, **fields)

    def one(self) -> TxInput:
        rng, chain = self.rng, self.chain
        signer = rng.choice(_signers())
        to = rng.choice(_accounts())
        kind = rng.randrange(24)
        if kind < 8:
            return self.transfer(signer, to, rng.randint(1, 400))
        if kind == 8:
            return self.transfer(signer, to, 10**15)  # insufficient funds
        if kind == 9:
            return self.transfer(
                signer, f"{signer.decode().split('|')[1]}/{signer.decode().split('|')[3]}", 3
            )
        if kind == 10:
            bad_to = rng.choice(["nobody", "", "x" * 300, 7, None, ["org1/a"], "/ab", "org1/\x00x"])
            return self.transfer(signer, bad_to, 1)
        if kind == 11:
            bad_amount = rng.choice([0, -5, True, "3", 2**63, None, [1]])
            return self.transfer(signer, to, bad_amount)
        if kind == 12:
            return self.transfer(signer, to) if rng.random() < 0.5 else self.transfer(signer, to, 1, 2)
        if kind == 13:
            return chain.tx(signer, "token", rng.choice(["transfr", "_table", "issue2"]), to, 1)
        if kind == 14:
            return chain.tx(signer, rng.choice(["nosuch", "Token", "relay2"]), "transfer", to, 1)
        if kind == 15:
            return chain.tx(signer, "relay", rng.choice(["pay", "pay_then_fail"]), to, rng.randint(1, 300))
        if kind == 16:
            org = rng.choice(ORGS)
            return chain.tx(rng.choice([admin(org), signer]), "token", "issue", to, rng.randint(1, 1000))
        if kind == 17:
            return chain.tx(
                signer,
                "token",
                rng.choice(["balance", "total_supply"]),
                *([to] if rng.random() < 0.5 else []),
            )
        if kind == 18 and self.committed:
            return rng.choice(self.committed)  # a replay
        if kind == 19:
            field = rng.choice(["chain_id", "channel"])
            return self.transfer(signer, to, 1, **{field: "other"})
        if kind == 20:
            return self.transfer(signer, to, 1, expiry_height=chain.height + rng.randint(-1, 1))
        if kind == 21:
            bad = rng.choice([cert("org9", "client", "x"), b"garbage", REVOKED_AT_GENESIS])
            return self.transfer(bad, to, 1)
        if kind == 22:
            tx = self.transfer(signer, to, 1)
            malformed = msgspec.structs.replace(tx.tx, nonce=b"short")
            return TxInput(sha256(encode(malformed)), malformed)
        return chain.tx(signer, "relay", "who")

    def block(self, size: int) -> list[TxInput]:
        txs = [self.one() for _ in range(size)]
        for _ in range(self.rng.randint(0, 3)):  # in-block duplicates
            txs.insert(self.rng.randrange(len(txs) + 1), self.rng.choice(txs))
        return txs


def _record(outcome: BlockOutcome, chain: Chain) -> list[Any]:
    encoded = [encode(r) for r in outcome.receipts]
    return [
        encoded,
        merkle_root(encoded),
        [list(w) for w in outcome.writes],
        outcome.config,
        outcome.config_changed,
        sorted(chain.state.data.items()),
    ]


def run_random_chain(seed: int) -> tuple[list[Any], list[BlockOutcome]]:
    """The record of every block of the seeded workload, and the outcomes themselves."""
    rng = random.Random(seed)
    base = make_config(ORGS)
    orgs = [
        msgspec.structs.replace(o, crls=[REVOKED_AT_GENESIS]) if o.name == "org3" else o for o in base.orgs
    ]
    chain = Chain(msgspec.structs.replace(base, orgs=orgs))
    work = _Workload(chain, rng)
    digest = source_hash_hex(RELAY)
    setup = [
        chain.tx(admin(org), "token", "issue", acct, rng.randint(0, 2_000))
        for acct in _accounts()
        for org in [acct.split("/")[0]]
    ]
    setup += [
        chain.tx(admin("org1"), "lifecycle", "approve", "relay", "1", digest),
        chain.tx(admin("org2"), "lifecycle", "approve", "relay", "1", digest),
        chain.tx(admin("org3"), "lifecycle", "commit", "relay", "1", RELAY),
    ]
    records, outcomes = [], []

    def run(txs: list[TxInput]) -> None:
        outcome = chain.run(*txs)
        outcomes.append(outcome)
        records.append(_record(outcome, chain))
        work.committed.extend(
            t for t, r in zip(txs, outcome.receipts, strict=True) if r.status != STATUS_INVALID
        )

    run(setup)
    # Config changes applied mid-block (later transactions see them): a step limit that
    # calls through the relay exceed, a revocation, then one that transfers exceed.
    updates = {
        3: {"op": "set_tx_steps_max", "tx_steps_max": 180},
        6: {"op": "update_crl", "org": "org2", "crl": client("org2", 1)},
        8: {"op": "set_tx_steps_max", "tx_steps_max": 120},
    }
    for height in range(2, 9):
        txs = work.block(rng.randint(30, 80))
        if height in updates:
            txs.insert(5, chain.tx(admin("org1"), "config", "propose", updates[height]))
            proposal = sorted(updates).index(height) + 1
            txs.insert(len(txs) // 2, chain.tx(admin("org2"), "config", "approve", proposal))
        run(txs)
    return records, outcomes


@pytest.mark.parametrize("seed", sorted(GOLDEN))
def test_random_blocks_give_the_recorded_bytes(seed: int) -> None:
    records, outcomes = run_random_chain(seed)
    statuses = {r.status for o in outcomes for r in o.receipts}
    errors = {r.error.split(":")[0] for o in outcomes for r in o.receipts}
    assert statuses == {STATUS_OK, STATUS_FAILED, STATUS_INVALID}
    assert {
        "OutOfSteps",
        "ContractError",
        "UnknownMethod",
        "UnknownContract",
        "duplicate transaction",
    } <= errors
    assert {"invalid identity", "wrong channel", "expired", "malformed transaction"} <= errors
    assert sha256(encode(records)).hex() == GOLDEN[seed]


def test_transfers_on_the_ledger_with_replays_after_a_restart_and_expired_certificates() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        net = TransferNet(Path(tmp), clients_per_org=2, funding=1_000)
        try:
            alice, bob = net.clients[0], net.clients[5]
            first = [
                net.sign(alice, "token", "transfer", [account(bob), 400]),
                net.sign(alice, "token", "transfer", [account(bob), 700]),  # insufficient funds
                net.sign(bob, "token", "transfr", [account(alice), 1]),
                net.sign(bob, "token", "transfer", [account(alice), 1], channel="other"),
            ]
            outcome = net.commit(first)
            assert [r.status for r in outcome.receipts] == [
                STATUS_OK,
                STATUS_FAILED,
                STATUS_FAILED,
                STATUS_INVALID,
            ]
            assert outcome.receipts[1].error == "ContractError: insufficient funds: balance 600, amount 700"
            assert outcome.receipts[0].events[0].payload == {
                "amount": 400,
                "from": account(alice),
                "to": account(bob),
            }
            # A restarted node learns the committed ids from the ledger's index alone.
            net.committed = CommittedTxIds(net.ledger.has_tx, net.ledger.tx_ids())
            again = net.execute([*first[:3], net.sign(bob, "token", "transfer", [account(alice), 5])])
            assert [r.error for r in again.receipts] == [
                *["duplicate transaction: already committed"] * 3,
                "",
            ]
            assert net.committed.ledger_lookups >= 3
            # Ten years on, every certificate has expired.
            late = net.executor.execute_block(
                net.ledger.state,
                net.config,
                net.height,
                net.block_ms + 10 * 365 * 86_400_000,
                [net.sign(bob, "token", "transfer", [account(alice), 5])],
                net.committed.__contains__,
            )
            assert [(r.status, r.error) for r in late.receipts] == [
                (STATUS_INVALID, "invalid identity: certificate_expired")
            ]
        finally:
            net.close()


EDGE_SIGNERS = [
    cert("org1", "client", "x" * 250),  # an account whose balance key is too long
    cert("org2", "client", "zoë-ünïcode"),
    cert("org3", "client", "nul\x00inside"),  # refused as an account, so never funded
]


def _edge_accounts() -> list[str]:
    return [
        *_accounts(),
        "org2/zoë-ünïcode",
        "org1/" + "y" * 195,  # 200 characters: the longest account
        "org1/" + "y" * 196,
        "org3/sink€",
        "org4/nobody-yet",
    ]


def _transfer_blocks(chain: Chain, rng: random.Random) -> list[list[TxInput]]:
    signers = [*_signers(), *EDGE_SIGNERS]
    accounts = _edge_accounts()
    funding = [
        chain.tx(admin(acct.split("/")[0]), "token", "issue", acct, rng.randint(0, 500))
        for acct in [*_accounts(), "org1/" + "x" * 250, "org2/zoë-ünïcode"]
    ]
    blocks = [funding]
    for _ in range(6):
        txs = []
        for _ in range(rng.randint(20, 120)):
            signer = rng.choice(signers)
            sender = "/".join(signer.decode().split("|")[1::2])
            to = sender if rng.random() < 0.1 else rng.choice(accounts)
            amount = rng.choice([1, rng.randint(1, 60), rng.randint(1, 600), 2**63 - 1])
            if rng.random() < 0.05:
                txs.append(chain.tx(admin("org1"), "token", "issue", to, rng.randint(1, 50)))
            else:
                txs.append(chain.tx(signer, "token", "transfer", to, amount))
        blocks.append(txs)
    return blocks


@pytest.mark.parametrize("seed", range(8))
def test_direct_transfers_give_what_the_calls_give(seed: int) -> None:
    """Token.transfer's direct path against the call through a context, meter and overlay."""
    rng = random.Random(seed)
    steps_max = 100_000 if seed < 2 else 138 + 3 * seed  # transfers take 143..155 steps
    direct, general = Chain(make_config(ORGS, steps_max)), Chain(make_config(ORGS, steps_max))
    general.executor = Executor(FakeValidator, direct_paths=False)
    blocks = _transfer_blocks(direct, rng)
    results = []
    for chain in (direct, general):
        records = []
        for txs in blocks:
            outcome = chain.run(*txs)
            assert outcome.encoded_receipts == [encode(r) for r in outcome.receipts]
            records.append(_record(outcome, chain))
        results.append(records)
    assert results[0] == results[1]
    receipts = [decode(raw, Receipt) for block in results[0] for raw in block[0]]
    assert {r.status for r in receipts} == {STATUS_OK, STATUS_FAILED}
