"""The native token: issue, transfer, balances and every way they can be refused."""

from __future__ import annotations

from execution_harness import Chain, admin, client

from consortia.execution.keys import contract_key
from consortia.types import STATUS_FAILED, STATUS_OK, Event

ALICE = "org1/client1@org1"
BOB = "org2/client1@org2"


def test_issue_and_transfer_move_tokens_and_emit_events() -> None:
    chain = Chain()
    assert chain.ok(admin("org1"), "token", "issue", ALICE, 100) == 100
    receipt = chain.call(client("org1"), "token", "transfer", BOB, 30)
    assert receipt.status == STATUS_OK
    assert receipt.result == 70
    assert receipt.events == [Event("token", "Transferred", {"from": ALICE, "to": BOB, "amount": 30})]
    # The payload as a decoded event would hold it: keys in their canonical (sorted) order.
    assert list(receipt.events[0].payload) == ["amount", "from", "to"]
    assert chain.query("token", "balance", ALICE) == 70
    assert chain.query("token", "balance", BOB) == 30
    assert chain.query("token", "total_supply") == 100
    # Balances live in the token contract's namespace under composite keys.
    assert contract_key("token", "\x00balance\x00" + BOB + "\x00") in chain.state.data


def test_transfer_touches_only_two_balance_keys() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 10)
    outcome = chain.run(chain.tx(client("org1"), "token", "transfer", BOB, 1))
    assert [w.key for w in outcome.writes] == sorted(
        contract_key("token", "\x00balance\x00" + a + "\x00") for a in (ALICE, BOB)
    )


def test_insufficient_funds_fails_without_writes() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 5)
    outcome = chain.run(chain.tx(client("org1"), "token", "transfer", BOB, 6))
    assert outcome.receipts[0].status == STATUS_FAILED
    assert outcome.receipts[0].error == "ContractError: insufficient funds: balance 5, amount 6"
    assert outcome.writes == []
    assert chain.query("token", "balance", ALICE) == 5


def test_amounts_must_be_positive_ints() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 5)
    for amount in (0, -1, True, "3", None, [1]):
        receipt = chain.call(client("org1"), "token", "transfer", BOB, amount)
        assert receipt.status == STATUS_FAILED, amount
        assert "amount must be an integer" in receipt.error
    assert chain.call(admin("org1"), "token", "issue", ALICE, -5).status == STATUS_FAILED
    assert chain.query("token", "total_supply") == 5


def test_issue_overflow_is_refused() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 2**63 - 10)
    receipt = chain.call(admin("org2"), "token", "issue", BOB, 10)
    assert receipt.status == STATUS_FAILED
    assert receipt.error == "ContractError: issue would overflow the total supply"
    assert chain.call(admin("org2"), "token", "issue", BOB, 2**63).status == STATUS_FAILED
    assert chain.ok(admin("org2"), "token", "issue", BOB, 9) == 9
    assert chain.query("token", "total_supply") == 2**63 - 1


def test_only_admins_issue() -> None:
    chain = Chain()
    receipt = chain.call(client("org1"), "token", "issue", ALICE, 1)
    assert receipt.status == STATUS_FAILED
    assert receipt.error == "ContractError: issue requires an org admin"
    assert chain.query("token", "total_supply") == 0


def test_transfer_to_self_keeps_the_balance() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 7)
    assert chain.ok(client("org1"), "token", "transfer", ALICE, 7) == 7
    assert chain.query("token", "balance", ALICE) == 7
    assert chain.call(client("org1"), "token", "transfer", ALICE, 8).status == STATUS_FAILED


def test_bad_accounts_and_arity_fail() -> None:
    chain = Chain()
    for account in ("", "noslash", "/x", "x/", "a\x00/b", 5):
        receipt = chain.call(admin("org1"), "token", "issue", account, 1)
        assert receipt.status == STATUS_FAILED, account
    receipt = chain.call(admin("org1"), "token", "issue", ALICE)
    assert receipt.error == "ContractError: token.issue takes 2 arguments, got 1"


def test_many_transfers_in_one_block_see_each_other() -> None:
    chain = Chain()
    chain.ok(admin("org1"), "token", "issue", ALICE, 3)
    txs = [chain.tx(client("org1"), "token", "transfer", BOB, 1) for _ in range(4)]
    outcome = chain.run(*txs)
    assert [r.status for r in outcome.receipts] == [STATUS_OK] * 3 + [STATUS_FAILED]
    assert [w.tx_index for w in outcome.writes] == [0, 0, 1, 1, 2, 2]
    assert chain.query("token", "balance", BOB) == 3
    assert chain.query("token", "balance", ALICE) == 0
