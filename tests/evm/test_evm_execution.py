"""The EVM inside the executor: Solidity beside native contracts, on one block and one state."""

from __future__ import annotations

from consortia.execution.evm.layout import (
    ACCOUNT_PREFIX,
    CODE_PREFIX,
    STORAGE_PREFIX,
    read_account,
    read_code,
    read_storage,
)
from consortia.execution.evm.permissions import permitted_org
from consortia.execution.keys import CONFIG_KEY
from consortia.types import STATUS_FAILED, STATUS_INVALID, STATUS_OK, Event

from .evm_kit import (
    ALICE,
    ALICE_KEY,
    BOB,
    BOB_KEY,
    ETH_CHAIN_ID,
    PROBE_CODE,
    TRANSFER_TOPIC,
    EvmChain,
    address_word,
    admin_cert,
    balance_slot,
    call_data,
    token_deploy_data,
    word,
)

SUPPLY = 10**24


def deploy_token(chain: EvmChain) -> bytes:
    receipt = chain.run(chain.eth(ALICE_KEY, None, token_deploy_data("Test", "TST", SUPPLY))).receipts[0]
    assert receipt.status == STATUS_OK, receipt.error
    address: bytes = receipt.result["contract_address"]
    return address


def balance_of(chain: EvmChain, token: bytes, holder: bytes) -> int:
    outcome = chain.call(token, call_data("balanceOf(address)", holder))
    assert outcome.status == STATUS_OK, outcome.error
    return int.from_bytes(outcome.output, "big")


def test_deploy_erc20_then_transfer_and_read_balances() -> None:
    chain = EvmChain()
    token = deploy_token(chain)
    assert len(token) == 20 and read_code(chain.state, token)
    assert read_account(chain.state, ALICE).nonce == 1
    assert balance_of(chain, token, ALICE) == SUPPLY

    outcome = chain.run(chain.eth(ALICE_KEY, token, call_data("transfer(address,uint256)", BOB, 250)))
    receipt = outcome.receipts[0]
    assert receipt.status == STATUS_OK, receipt.error
    assert 21_000 < receipt.steps == receipt.result["gas_used"] < 100_000
    assert receipt.events == [
        Event(
            "evm",
            "log",
            {
                "address": token,
                "topics": [TRANSFER_TOPIC, address_word(ALICE), address_word(BOB)],
                "data": word(250),
            },
        )
    ]
    assert balance_of(chain, token, BOB) == 250
    assert balance_of(chain, token, ALICE) == SUPPLY - 250
    # The balance is a flat storage record, readable without the interpreter.
    assert read_storage(chain.state, token, balance_slot(BOB)) == 250
    # Every write of the transaction is an EVM record in state (covered by the state root).
    assert {w.key[:4] for w in outcome.writes} == {ACCOUNT_PREFIX, STORAGE_PREFIX}


def test_revert_reason_reaches_the_receipt_and_nothing_but_the_nonce_changes() -> None:
    chain = EvmChain()
    token = deploy_token(chain)
    before = dict(chain.state.data)
    outcome = chain.run(chain.eth(ALICE_KEY, token, call_data("transfer(address,uint256)", BOB, SUPPLY + 1)))
    receipt = outcome.receipts[0]
    assert receipt.status == STATUS_FAILED
    assert receipt.error == "reverted: insufficient balance"
    assert receipt.events == []
    assert receipt.result["revert_data"][:4] == bytes.fromhex("08c379a0")
    assert receipt.steps > 21_000
    # As on Ethereum, the failed transaction still used its nonce; the call's writes are gone.
    changed = {k for k in set(before) | set(chain.state.data) if before.get(k) != chain.state.data.get(k)}
    assert changed == {ACCOUNT_PREFIX + ALICE}
    assert read_account(chain.state, ALICE).nonce == 2
    assert balance_of(chain, token, ALICE) == SUPPLY


def test_revert_with_reason_from_a_read_only_call() -> None:
    chain = EvmChain()
    probe = chain.run(chain.eth(ALICE_KEY, None, PROBE_CODE)).receipts[0].result["contract_address"]
    outcome = chain.call(probe, call_data("fail(string)", "no such lot"))
    assert outcome.status == STATUS_FAILED
    assert outcome.error == "reverted: no such lot"


def test_endless_loop_runs_out_of_gas_and_its_writes_are_undone() -> None:
    chain = EvmChain()
    probe = chain.run(chain.eth(ALICE_KEY, None, PROBE_CODE)).receipts[0].result["contract_address"]
    receipt = chain.run(chain.eth(ALICE_KEY, probe, call_data("spin()"), gas=200_000)).receipts[0]
    assert receipt.status == STATUS_FAILED
    assert receipt.error == "out of gas"
    assert receipt.steps == 200_000  # all of it: an exceptional halt burns the gas
    assert read_storage(chain.state, probe, 0) == 0  # counter


def test_storage_written_then_reverted_inside_one_call_leaves_nothing() -> None:
    chain = EvmChain()
    probe = chain.run(chain.eth(ALICE_KEY, None, PROBE_CODE)).receipts[0].result["contract_address"]
    receipt = chain.run(chain.eth(ALICE_KEY, probe, call_data("storeThenFail(uint256)", 5))).receipts[0]
    assert (receipt.status, receipt.error) == (STATUS_FAILED, "reverted: undone")
    assert not [k for k in chain.state.data if k.startswith(STORAGE_PREFIX + probe)]


def test_nonces_gaps_replays_and_permissions_are_invalid_and_write_nothing() -> None:
    chain = EvmChain(permitted=(ALICE,))
    token = deploy_token(chain)
    before = dict(chain.state.data)
    transfer = call_data("transfer(address,uint256)", BOB, 1)
    gap = chain.eth(ALICE_KEY, token, transfer, nonce=5)
    low = chain.eth(ALICE_KEY, token, transfer, nonce=0)
    stranger = chain.eth(BOB_KEY, token, transfer)
    foreign = chain.eth(ALICE_KEY, token, transfer, nonce=1, chain_id=ETH_CHAIN_ID + 1)
    outcome = chain.run(gap, low, stranger, foreign)
    assert [r.status for r in outcome.receipts] == [STATUS_INVALID] * 4
    errors = [r.error for r in outcome.receipts]
    assert errors[0] == "nonce gap: account nonce is 1, transaction has 5"
    assert errors[1] == "nonce too low: account nonce is 1, transaction has 0"
    assert errors[2] == f"account 0x{BOB.hex()} is not permitted to send transactions"
    assert errors[3].startswith("wrong chain id")
    assert outcome.writes == [] and chain.state.data == before

    good = chain.eth(ALICE_KEY, token, transfer, nonce=1)
    replay = good
    outcome = chain.run(good, replay)
    assert [r.status for r in outcome.receipts] == [STATUS_OK, STATUS_INVALID]
    assert outcome.receipts[1].error == "duplicate transaction"
    assert chain.run(good).receipts[0].error == "duplicate transaction"


def test_consecutive_nonces_from_one_sender_run_in_one_block() -> None:
    chain = EvmChain()
    token = deploy_token(chain)
    txs = [chain.eth(ALICE_KEY, token, call_data("transfer(address,uint256)", BOB, i)) for i in range(1, 6)]
    outcome = chain.run(*txs)
    assert [r.status for r in outcome.receipts] == [STATUS_OK] * 5
    assert balance_of(chain, token, BOB) == 15
    assert read_account(chain.state, ALICE).nonce == 6


def test_solidity_and_native_contracts_share_a_block() -> None:
    chain = EvmChain()
    token = deploy_token(chain)
    outcome = chain.run(
        chain.native(admin_cert("org1"), "token", "issue", "org1/alice", 10),
        chain.eth(ALICE_KEY, token, call_data("transfer(address,uint256)", BOB, 3)),
        chain.native(admin_cert("org1"), "token", "balance", "org1/alice"),
    )
    assert [r.status for r in outcome.receipts] == [STATUS_OK] * 3
    assert outcome.receipts[2].result == 10
    assert [w.tx_index for w in outcome.writes] == sorted(w.tx_index for w in outcome.writes)
    assert {w.tx_index for w in outcome.writes} == {0, 1}


def test_the_same_block_executes_to_the_same_writes_and_receipts() -> None:
    def run() -> tuple[object, object]:
        chain = EvmChain()
        token = deploy_token(chain)
        outcome = chain.run(
            chain.eth(ALICE_KEY, token, call_data("transfer(address,uint256)", BOB, 9)),
            chain.eth(BOB_KEY, token, call_data("transfer(address,uint256)", ALICE, 4)),
            chain.eth(ALICE_KEY, token, call_data("transfer(address,uint256)", BOB, SUPPLY * 2)),
        )
        return outcome.receipts, outcome.writes

    assert run() == run()


def test_code_is_stored_once_by_hash() -> None:
    chain = EvmChain()
    deploy_token(chain)
    deploy_token(chain)
    assert len([k for k in chain.state.data if k.startswith(CODE_PREFIX)]) == 1


def test_admins_permit_and_revoke_accounts_through_config_proposals() -> None:
    chain = EvmChain(permitted=())
    refused = chain.run(chain.eth(BOB_KEY, None, PROBE_CODE, nonce=0)).receipts[0]
    assert (refused.status, refused.error) == (
        STATUS_INVALID,
        f"account 0x{BOB.hex()} is not permitted to send transactions",
    )

    def propose(org: str, update: dict[str, object]) -> int:
        receipt = chain.run(chain.native(admin_cert(org), "config", "propose", update)).receipts[0]
        assert receipt.status == STATUS_OK, receipt.error
        pid: int = receipt.result
        return pid

    def approve(org: str, pid: int) -> None:
        receipt = chain.run(chain.native(admin_cert(org), "config", "approve", pid)).receipts[0]
        assert receipt.status == STATUS_OK, receipt.error

    pid = propose("org1", {"op": "evm_permit", "address": "0x" + BOB.hex(), "org": "org2"})
    assert permitted_org(chain.state, BOB) is None  # one org of three is not a majority
    # The approval and Bob's first transaction share a block: the allowlist is read at the
    # transaction's position in the block. (A new transaction: the refused one is recorded.)
    outcome = chain.run(
        chain.native(admin_cert("org2"), "config", "approve", pid),
        chain.eth(BOB_KEY, None, PROBE_CODE, nonce=0, gas=2_000_000),
    )
    assert [r.status for r in outcome.receipts] == [STATUS_OK, STATUS_OK]
    assert permitted_org(chain.state, BOB) == "org2"
    assert chain.config.sequence == 1 and CONFIG_KEY in chain.state.data

    pid = propose("org3", {"op": "evm_revoke", "address": BOB})
    approve("org1", pid)
    assert permitted_org(chain.state, BOB) is None
    assert chain.run(chain.eth(BOB_KEY, None, PROBE_CODE)).receipts[0].status == STATUS_INVALID


def test_malformed_allowlist_proposals_are_refused() -> None:
    chain = EvmChain()
    for update in (
        {"op": "evm_permit", "address": "0x1234", "org": "org1"},
        {"op": "evm_permit", "address": BOB, "org": "nobody"},
        {"op": "evm_permit", "address": BOB},
        {"op": "evm_revoke", "address": BOB, "org": "org1"},
    ):
        receipt = chain.run(chain.native(admin_cert("org1"), "config", "propose", update)).receipts[0]
        assert receipt.status == STATUS_FAILED, update
