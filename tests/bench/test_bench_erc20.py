"""The ERC-20 workload end to end: pre-signed Ethereum transfers on a real Solo network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.bench.runner import Harness, RunOptions
from consortia.bench.target import Target, stand_up
from consortia.bench.workload import WorkerEnv, load_workload
from consortia.bench.workloads.erc20_transfer import (
    FUNDING,
    RECIPIENTS,
    SENDERS,
    SUPPLY,
    Accounts,
    Rpc,
    token_artifact,
)
from consortia.types.eth import decode_eth_transaction, tx_id_of


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("bench-erc20") / "net"
    with stand_up("solo", 1, base, wait_ms=20) as target:
        yield target


def test_the_artifact_is_the_compiled_token() -> None:
    artifact = token_artifact()
    assert "Token.sol" in artifact["source"]
    assert {f["name"] for f in artifact["abi"] if f["type"] == "function"} >= {"transfer", "balanceOf"}
    assert bytes.fromhex(artifact["bytecode"])[:2] == b"\x60\x80"  # solc's free-memory-pointer prologue


def test_transfers_commit_and_move_balances(solo: Target) -> None:
    accounts = Accounts.of(solo.crypto, solo.orgs)
    with Harness(solo, RunOptions(workload="erc20_transfer", workers=2, drain_s=30)) as h:
        with Rpc(solo.urls[0], solo.channel) as rpc:
            before_senders = [rpc.balance(accounts.token, s) for s in accounts.senders]
            before_recipients = sum(rpc.balance(accounts.token, r) for r in accounts.recipients)
        assert before_senders[0] == SUPPLY - (SENDERS - 1) * FUNDING
        assert before_senders[1:] == [FUNDING] * (SENDERS - 1)
        r1 = h.run(200, 1.0)
        r2 = h.run(200, 1.0)  # the next run goes on from the senders' nonces
    for r in (r1, r2):
        assert r.workload == "erc20_transfer"
        assert (r.submitted, r.committed, r.rejected, r.lost) == (200, 200, 0, 0)
        assert len(r.latencies_ms) == 200 and r.tps > 0 and r.blocks >= 1
        assert r.receipts_sampled > 0 and r.failed_receipts_sampled == 0
    with Rpc(solo.urls[0], solo.channel) as rpc:
        after_senders = [rpc.balance(accounts.token, s) for s in accounts.senders]
        after_recipients = sum(rpc.balance(accounts.token, r) for r in accounts.recipients)
    assert sum(before_senders) - sum(after_senders) == 400
    assert after_recipients - before_recipients == 400
    assert all(a < b for a, b in zip(after_senders, before_senders, strict=True))  # every sender sent


def test_raw_transactions_are_signed_by_the_process_senders(solo: Target) -> None:
    workload = load_workload("erc20_transfer")
    accounts = Accounts.of(solo.crypto, solo.orgs)
    env = WorkerEnv(1, 4, solo.urls, Path(solo.crypto), solo.orgs, solo.channel, solo.chain_id)
    raws = workload.raw_transactions(env, 24)
    txs = [decode_eth_transaction(raw) for raw in raws]
    mine = set(accounts.senders[1::4])
    assert {tx.sender for tx in txs} == mine
    assert all(tx.to == accounts.token for tx in txs)
    for sender in mine:
        nonces = [tx.nonce for tx in txs if tx.sender == sender]
        assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))
    assert len({tx_id_of(raw) for raw in raws}) == 24
    assert len({tx.data[16:36] for tx in txs}) <= RECIPIENTS
