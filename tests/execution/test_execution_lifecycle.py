"""User contracts: approve-then-commit, upgrades, cross-contract calls and rollback."""

from __future__ import annotations

import pytest
from execution_harness import Chain, admin, client

from consortia.execution.errors import NotAView, QueryFailed, UnknownContract, UnknownMethodError
from consortia.execution.keys import contract_key, lifecycle_def_key
from consortia.execution.system.lifecycle import source_hash_hex
from consortia.types import STATUS_FAILED, STATUS_OK, Event

COUNTER = """
class Counter(Contract):
    def incr(self, n):
        v = self.ctx.get("n") or 0
        self.ctx.put("n", v + n)
        self.ctx.emit("Incremented", v + n)
        return v + n

    def incr_then_fail(self, n):
        self.incr(n)
        raise ContractError("counter refuses")

    @view
    def read(self):
        return self.ctx.get("n")
"""

COUNTER_V2 = COUNTER.replace("return v + n", "return (v + n) * 10")

RELAY = """
class Relay(Contract):
    def bump(self, n):
        self.ctx.put("mine", n)
        return self.ctx.call("counter", "incr", n)

    def bump_then_fail(self, n):
        self.ctx.put("mine", n)
        self.ctx.call("counter", "incr", n)
        raise ContractError("relay refuses")

    def survive_callee_failure(self, n):
        try:
            self.ctx.call("counter", "incr_then_fail", n)
        except ContractError:
            self.ctx.put("caught", n)
        return self.ctx.call("counter", "read")

    def spin(self):
        i = 0
        while True:
            self.ctx.put("spin", i)
            i = i + 1

    def recurse(self, n):
        return self.ctx.call("relay", "recurse", n + 1)

    @view
    def peek(self):
        return self.ctx.call("counter", "read")

    @view
    def sneaky(self):
        self.ctx.put("x", 1)
"""


def deploy(
    chain: Chain, name: str, source: str, version: str = "1", orgs: tuple[str, ...] = ("org1", "org2")
) -> None:
    digest = source_hash_hex(source)
    for org in orgs:
        chain.ok(admin(org), "lifecycle", "approve", name, version, digest)
    assert chain.ok(admin(orgs[0]), "lifecycle", "commit", name, version, source) == digest


def test_majority_approval_then_commit_makes_a_contract_callable() -> None:
    chain = Chain()
    deploy(chain, "counter", COUNTER)
    receipt = chain.call(client("org3"), "counter", "incr", 5)
    assert receipt.status == STATUS_OK
    assert receipt.result == 5
    assert receipt.events == [Event("counter", "Incremented", 5)]
    assert chain.query("counter", "read") == 5
    definition = chain.query("lifecycle", "definition", "counter")
    assert definition["version"] == "1"
    assert definition["approvals"] == ["org1", "org2"]
    assert definition["hash"] == source_hash_hex(COUNTER)
    assert lifecycle_def_key("counter") in chain.state.data
    assert chain.query("lifecycle", "approvals", "counter", "1") == {
        "org1": source_hash_hex(COUNTER),
        "org2": source_hash_hex(COUNTER),
    }


def test_commit_without_enough_approvals_fails() -> None:
    chain = Chain()
    digest = source_hash_hex(COUNTER)
    chain.ok(admin("org1"), "lifecycle", "approve", "counter", "1", digest)
    # org2 approved a different source: it does not count for this hash.
    chain.ok(admin("org2"), "lifecycle", "approve", "counter", "1", source_hash_hex(COUNTER_V2))
    receipt = chain.call(admin("org1"), "lifecycle", "commit", "counter", "1", COUNTER)
    assert receipt.status == STATUS_FAILED
    assert "do not meet the lifecycle policy" in receipt.error
    assert chain.query("lifecycle", "definition", "counter") is None
    assert chain.call(client("org1"), "counter", "incr", 1).error == "UnknownContract: counter"


def test_source_failing_the_sandbox_fails_with_its_problems() -> None:
    chain = Chain()
    bad = "import os\n" + COUNTER
    digest = source_hash_hex(bad)
    for org in ("org1", "org2", "org3"):
        chain.ok(admin(org), "lifecycle", "approve", "counter", "1", digest)
    receipt = chain.call(admin("org1"), "lifecycle", "commit", "counter", "1", bad)
    assert receipt.status == STATUS_FAILED
    assert receipt.error.startswith("ContractError: sandbox violation: ")
    assert "import" in receipt.error
    assert chain.query("lifecycle", "definition", "counter") is None


def test_upgrade_keeps_state_and_runs_new_code() -> None:
    chain = Chain()
    deploy(chain, "counter", COUNTER)
    chain.ok(client("org1"), "counter", "incr", 2)
    again = chain.call(admin("org1"), "lifecycle", "commit", "counter", "1", COUNTER)
    assert again.status == STATUS_FAILED  # same version twice
    deploy(chain, "counter", COUNTER_V2, version="2", orgs=("org2", "org3"))
    assert chain.ok(client("org1"), "counter", "incr", 1) == 30
    assert chain.query("lifecycle", "definition", "counter")["version"] == "2"


def test_lifecycle_refuses_clients_bad_names_and_system_names() -> None:
    chain = Chain()
    digest = source_hash_hex(COUNTER)
    assert chain.call(client("org1"), "lifecycle", "approve", "counter", "1", digest).status == STATUS_FAILED
    for name in ("token", "Counter", "1abc", "a" * 33, "a-b"):
        receipt = chain.call(admin("org1"), "lifecycle", "approve", name, "1", digest)
        assert receipt.status == STATUS_FAILED, name
    assert chain.call(admin("org1"), "lifecycle", "approve", "counter", "1", "XYZ").status == STATUS_FAILED


def test_failed_call_rolls_back_every_write_including_callees() -> None:
    chain = Chain()
    deploy(chain, "counter", COUNTER)
    deploy(chain, "relay", RELAY)
    assert chain.ok(client("org1"), "relay", "bump", 1) == 1
    before = dict(chain.state.data)
    outcome = chain.run(chain.tx(client("org1"), "relay", "bump_then_fail", 7))
    receipt = outcome.receipts[0]
    assert receipt.status == STATUS_FAILED
    assert receipt.error == "ContractError: relay refuses"
    assert receipt.events == []
    assert outcome.writes == []
    assert chain.state.data == before
    assert chain.query("counter", "read") == 1


def test_caught_callee_failure_rolls_back_only_the_callee() -> None:
    chain = Chain()
    deploy(chain, "counter", COUNTER)
    deploy(chain, "relay", RELAY)
    receipt = chain.call(client("org1"), "relay", "survive_callee_failure", 4)
    assert receipt.status == STATUS_OK
    assert receipt.result is None  # the counter's write was rolled back
    assert receipt.events == []  # and so was its event
    assert contract_key("relay", "caught") in chain.state.data
    assert contract_key("counter", "n") not in chain.state.data


def test_out_of_steps_is_identical_across_executions() -> None:
    receipts = []
    for _ in range(2):
        chain = Chain()
        deploy(chain, "relay", RELAY)
        outcome = chain.run(chain.tx(client("org1"), "relay", "spin"))
        assert outcome.writes == []
        receipts.append(outcome.receipts[0])
    assert receipts[0] == receipts[1]
    assert receipts[0].status == STATUS_FAILED
    assert receipts[0].error == "OutOfSteps: exceeded 100000 steps"
    assert receipts[0].steps > 100_000 - 100


def test_call_depth_is_bounded() -> None:
    chain = Chain()
    deploy(chain, "relay", RELAY)
    receipt = chain.call(client("org1"), "relay", "recurse", 0)
    assert receipt.status == STATUS_FAILED
    assert receipt.error.startswith("CallDepthExceeded")


def test_views_are_read_only_and_queries_are_typed() -> None:
    chain = Chain()
    deploy(chain, "counter", COUNTER)
    deploy(chain, "relay", RELAY)
    chain.ok(client("org1"), "counter", "incr", 3)
    assert chain.query("relay", "peek") == 3
    receipt = chain.call(client("org1"), "relay", "sneaky")
    assert receipt.status == STATUS_FAILED
    assert receipt.error == "ContractError: put is not allowed in a read-only context"
    with pytest.raises(QueryFailed):
        chain.query("relay", "sneaky")
    with pytest.raises(NotAView):
        chain.query("counter", "incr", 1)
    with pytest.raises(UnknownMethodError):
        chain.query("counter", "nope")
    with pytest.raises(UnknownContract):
        chain.query("nobody", "read")
    assert chain.call(client("org1"), "counter", "nope").error == "UnknownMethod: counter.nope"


EDGES = """
class Edges(Contract):
    def divide(self, a, b):
        return a // b

    def two(self, a, b):
        return a + b

    def store_range(self):
        self.ctx.put("r", range(3))

    def raw_record(self):
        return self.ctx.get_record("s/config")

    def propose_for_caller(self):
        return self.ctx.call("config", "propose", {"op": "set_tx_steps_max", "tx_steps_max": 1})

    def pay(self, to, amount):
        return self.ctx.call("token", "transfer", to, amount)
"""


def test_contract_failures_become_deterministic_receipts() -> None:
    chain = Chain()
    deploy(chain, "edges", EDGES)
    divide = chain.call(client("org1"), "edges", "divide", 1, 0)
    assert divide.status == STATUS_FAILED
    assert divide.error.startswith("ContractRuntimeError: ")
    assert "ZeroDivisionError" in divide.error
    arity = chain.call(client("org1"), "edges", "two", 1)
    assert arity.status == STATUS_FAILED
    assert arity.error.startswith("BadArguments: ")
    odd = chain.call(client("org1"), "edges", "store_range")
    assert odd.status == STATUS_FAILED
    assert odd.error == "ContractError: value is not plain data: type range is not allowed in values"


def test_user_contracts_cannot_reach_system_powers() -> None:
    chain = Chain()
    deploy(chain, "edges", EDGES)
    raw = chain.call(admin("org1"), "edges", "raw_record")
    assert raw.status == STATUS_FAILED
    assert "get_record" in raw.error
    indirect = chain.call(admin("org1"), "edges", "propose_for_caller")
    assert indirect.error == (
        "ContractError: propose must be called directly by a transaction, not by a contract"
    )
    assert chain.config.tx_steps_max == 100_000


def test_a_contract_moves_tokens_as_the_transaction_signer() -> None:
    """Cross-contract calls keep the caller (as in Fabric): only call contracts you trust."""
    chain = Chain()
    deploy(chain, "edges", EDGES)
    chain.ok(admin("org1"), "token", "issue", "org1/client1@org1", 10)
    assert chain.ok(client("org1"), "edges", "pay", "org2/client1@org2", 4) == 6
    assert chain.query("token", "balance", "org2/client1@org2") == 4
