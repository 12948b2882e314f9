"""The block rule: validity checks, config changes mid-block, write lists and determinism."""

from __future__ import annotations

import pytest
from execution_harness import CHANNEL, Chain, admin, cert, client
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.execution.errors import StateError
from consortia.execution.genesis import config_from_state, genesis_writes
from consortia.execution.keys import CONFIG_KEY
from consortia.types import STATUS_FAILED, STATUS_INVALID, STATUS_OK, encode

ALICE = "org1/client1@org1"
BOB = "org2/client1@org2"


def test_invalid_identity_is_rejected_without_running() -> None:
    chain = Chain()
    outcome = chain.run(
        chain.tx(cert("nobody", "admin", "x"), "token", "issue", ALICE, 1),
        chain.tx(b"garbage", "token", "issue", ALICE, 1),
    )
    assert [(r.status, r.error, r.steps) for r in outcome.receipts] == [
        (STATUS_INVALID, "invalid identity: unknown_issuer", 0),
        (STATUS_INVALID, "invalid identity: unknown_issuer", 0),
    ]
    assert outcome.writes == []


def test_duplicates_in_block_and_in_ledger_are_invalid() -> None:
    chain = Chain()
    issue = chain.tx(admin("org1"), "token", "issue", ALICE, 1)
    outcome = chain.run(issue, issue)
    assert [r.status for r in outcome.receipts] == [STATUS_OK, STATUS_INVALID]
    assert outcome.receipts[1].error == "duplicate transaction in block"
    again = chain.run(issue)
    assert again.receipts[0].error == "duplicate transaction: already committed"
    assert chain.query("token", "total_supply") == 1


def test_expiry_wrong_chain_and_channel() -> None:
    chain = Chain()  # the next block is height 1
    outcome = chain.run(
        chain.tx(admin("org1"), "token", "issue", ALICE, 1, expiry_height=1),
        chain.tx(admin("org1"), "token", "issue", ALICE, 1, chain_id="other"),
        chain.tx(admin("org1"), "token", "issue", ALICE, 1, channel="other"),
    )
    assert [r.error for r in outcome.receipts] == ["", "wrong chain_id", "wrong channel"]
    later = chain.run(chain.tx(admin("org1"), "token", "issue", ALICE, 1, expiry_height=1))
    assert later.receipts[0].status == STATUS_INVALID
    assert later.receipts[0].error == "expired: expiry_height 1 < height 2"


def test_unknown_contract_fails_deterministically() -> None:
    chain = Chain()
    receipt = chain.call(client("org1"), "nothing", "run")
    assert (receipt.status, receipt.error, receipt.steps) == (STATUS_FAILED, "UnknownContract: nothing", 50)


def test_config_update_adding_an_org_applies_to_later_transactions_in_the_block() -> None:
    chain = Chain()
    update = {"op": "add_org", "name": "org4", "ca_certs": [b"ca-org4"], "tls_ca_certs": [b"tlsca-org4"]}
    assert chain.ok(admin("org1"), "config", "propose", update) == 1
    assert chain.query("config", "proposal", 1)["status"] == "pending"
    # org4 is unknown until the second approval (majority of 3) applies the update.
    outcome = chain.run(
        chain.tx(client("org4"), "token", "transfer", ALICE, 1),
        chain.tx(admin("org2"), "config", "approve", 1),
        chain.tx(admin("org4"), "token", "issue", "org4/admin@org4", 9),
    )
    assert [r.status for r in outcome.receipts] == [STATUS_INVALID, STATUS_OK, STATUS_OK]
    assert outcome.receipts[1].result is True
    assert outcome.config_changed
    assert outcome.config.sequence == 1
    assert [o.name for o in outcome.config.orgs] == ["org1", "org2", "org3", "org4"]
    assert config_from_state(chain.state) == outcome.config
    assert chain.query("config", "current")["orgs"][3]["name"] == "org4"
    # With four orgs the majority is three: a new proposal needs three approvals.
    chain.ok(admin("org4"), "config", "propose", {"op": "set_tx_steps_max", "tx_steps_max": 500})
    assert chain.ok(admin("org1"), "config", "approve", 2) is False
    assert chain.ok(admin("org2"), "config", "approve", 2) is True
    assert chain.config.tx_steps_max == 500
    assert chain.config.sequence == 2


def test_config_update_refusals() -> None:
    chain = Chain()
    bad_ca = {"op": "add_org", "name": "org9", "ca_certs": [b"bad-ca"], "tls_ca_certs": [b"x"]}
    assert chain.call(admin("org1"), "config", "propose", bad_ca).error == (
        "ContractError: the updated config is unusable: bad_config"
    )
    assert chain.call(client("org1"), "config", "propose", {"op": "remove_org", "name": "org3"}).status == (
        STATUS_FAILED
    )
    assert chain.call(admin("org1"), "config", "propose", {"op": "explode"}).error == (
        "ContractError: unknown config op 'explode'"
    )
    chain.ok(admin("org1"), "config", "propose", {"op": "remove_org", "name": "org3"})
    chain.ok(admin("org1"), "config", "propose", {"op": "set_block_limits", "txs_max": 10})
    assert "already approved" in chain.call(admin("org1"), "config", "approve", 1).error
    assert chain.ok(admin("org2"), "config", "approve", 2) is True
    assert chain.config.block.txs_max == 10
    assert "stale" in chain.call(admin("org2"), "config", "approve", 1).error
    assert "is applied" in chain.call(admin("org3"), "config", "approve", 2).error


def test_revocation_by_crl_update_invalidates_later_transactions() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 5)
    revoked = client("org1")
    chain.ok(admin("org1"), "config", "propose", {"op": "update_crl", "org": "org1", "crl": revoked})
    outcome = chain.run(
        chain.tx(revoked, "token", "transfer", BOB, 1),
        chain.tx(admin("org3"), "config", "approve", 1),
        chain.tx(revoked, "token", "transfer", BOB, 1),
    )
    assert [r.status for r in outcome.receipts] == [STATUS_OK, STATUS_OK, STATUS_INVALID]
    assert outcome.receipts[2].error == "invalid identity: certificate_revoked"


def test_each_transaction_gets_one_write_per_key_in_tx_order() -> None:
    chain = Chain()
    outcome = chain.run(
        chain.tx(admin("org1"), "token", "issue", ALICE, 5),
        chain.tx(client("org1"), "token", "transfer", BOB, 9),  # fails: no writes
        chain.tx(admin("org1"), "token", "issue", ALICE, 5),
    )
    indexes = [w.tx_index for w in outcome.writes]
    assert indexes == [0, 0, 2, 2]
    assert outcome.writes[:2] == sorted(outcome.writes[:2])
    assert not outcome.config_changed


def test_genesis_round_trip_and_missing_config() -> None:
    chain = Chain()
    writes = genesis_writes(chain.config)
    assert [(w.key, w.tx_index) for w in writes] == [(CONFIG_KEY, 0)]
    assert writes[0].value == encode(chain.config)
    assert config_from_state(chain.state) == chain.config
    with pytest.raises(StateError):
        config_from_state(type(chain.state)())


def _block(chain: Chain, plan: list[tuple[int, int, int]]) -> list:  # type: ignore[type-arg]
    txs = [chain.tx(admin("org1"), "token", "issue", ALICE, 50)]
    for sender, receiver, amount in plan:
        to = f"org{receiver}/client1@org{receiver}"
        txs.append(chain.tx(client(f"org{sender}"), "token", "transfer", to, amount))
    return txs


@settings(max_examples=25, deadline=None)
@given(plan=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(-1, 60)), max_size=12))
def test_same_block_on_fresh_states_gives_identical_bytes(plan: list[tuple[int, int, int]]) -> None:
    results = []
    for _ in range(2):
        chain = Chain()
        outcome = chain.run(*_block(chain, plan))
        results.append((encode(outcome.receipts), outcome.writes, sorted(chain.state.data.items())))
    assert results[0] == results[1]
    assert chain.config.channel == CHANNEL


def test_scenario_is_identical_across_processes_and_hash_seeds() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from execution_harness import scenario_digest

    here = Path(__file__).parent
    script = (
        f"import sys; sys.path.insert(0, {str(here)!r}); import execution_harness; "
        "print(execution_harness.scenario_digest())"
    )
    local = scenario_digest()
    assert scenario_digest() == local
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == local


def test_next_block_executes_on_the_uncommitted_outcome() -> None:
    """Pipelining: block 2 runs on block 1's overlay before block 1 is committed."""
    sequential = Chain()
    piped = Chain()
    b1 = [chain.tx(admin("org1"), "token", "issue", ALICE, 9) for chain in (sequential, piped)]
    b2 = [chain.tx(client("org1"), "token", "transfer", BOB, 4) for chain in (sequential, piped)]
    sequential.run(b1[0])
    expected = sequential.run(b2[0])

    first = piped.executor.execute_block(piped.state, piped.config, 1, 1000, [b1[1]], lambda _: False)
    assert first.state is not None
    second = piped.executor.execute_block(first.state, first.config, 2, 2000, [b2[1]], lambda _: False)
    assert piped.state.data == Chain().state.data  # nothing committed yet
    assert encode(second.receipts) == encode(expected.receipts)
    assert second.writes == expected.writes


MUTATOR = """
class Mutator(Contract):
    def poke(self, flat, nested):
        nested.append(flat)
        nested[0]["k"] = 2
        return len(nested)
"""


def test_a_contract_mutating_its_arguments_leaves_the_transaction_unchanged() -> None:
    from consortia.execution.system.lifecycle import source_hash_hex

    chain = Chain()
    digest = source_hash_hex(MUTATOR)
    deployed = chain.run(
        chain.tx(admin("org1"), "lifecycle", "approve", "mutator", "1", digest),
        chain.tx(admin("org3"), "lifecycle", "approve", "mutator", "1", digest),
        chain.tx(admin("org2"), "lifecycle", "commit", "mutator", "1", MUTATOR),
    )
    assert all(r.status == STATUS_OK for r in deployed.receipts), deployed.receipts
    nested = chain.tx(client("org1"), "mutator", "poke", "x", [{"k": 1}])
    flat = chain.tx(client("org1"), "token", "transfer", BOB, 0)
    outcome = chain.run(nested, flat, nested._replace(tx_id=b"\x01" * 32))
    assert [r.result for r in outcome.receipts] == [2, None, 2]  # the rerun sees the same args
    assert nested.tx.args == ["x", [{"k": 1}]]
    assert flat.tx.args == [BOB, 0]
