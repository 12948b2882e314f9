"""The food traceability sample contract, run in the sandbox against a fake context."""

from __future__ import annotations

from typing import Any

import pytest
from sandbox_helpers import TRACEABILITY_PATH, FakeCtx

from consortia.execution.contract import ContractError
from consortia.execution.sandbox import CompiledContract, Meter, compile_contract


@pytest.fixture(scope="module")
def contract() -> CompiledContract:
    return compile_contract(TRACEABILITY_PATH.read_text())


class Chain:
    """One shared store; each call comes from an org at a growing height."""

    def __init__(self, contract: CompiledContract) -> None:
        self.contract = contract
        self.store: dict[str, Any] = {}
        self.events: list[tuple[str, Any]] = []
        self.height = 0

    def call(self, org: str, method: str, *args: Any) -> Any:
        self.height += 1
        ctx = FakeCtx(self.store, org=org, height=self.height)
        ctx.tx_id = f"{self.height:064x}"
        result = self.contract.invoke(ctx, method, list(args), Meter(100_000))
        self.events.extend(ctx.events)
        return result


def test_the_contract_exposes_its_entry_points(contract: CompiledContract) -> None:
    assert contract.name == "Traceability"
    assert contract.methods == {
        "create_batch": False,
        "get_batch": True,
        "provenance": True,
        "receive": False,
        "transfer": False,
    }


def test_a_batch_travels_from_farm_to_shop(contract: CompiledContract) -> None:
    chain = Chain(contract)
    created = chain.call("farm", "create_batch", "lot-7", "lettuce", "Almeria", 500)
    assert created["holder"] == created["creator"] == "farm"
    chain.call("farm", "transfer", "lot-7", "truck", "shipped", "Almeria")
    chain.call("truck", "receive", "lot-7", "loaded", "Almeria")
    chain.call("truck", "transfer", "lot-7", "shop", "delivered", "Madrid")
    final = chain.call("shop", "receive", "lot-7", "shelved", "Madrid")

    assert final == chain.call("anyone", "get_batch", "lot-7")
    assert (final["holder"], final["pending"], final["steps"], final["quantity_kg"]) == ("shop", None, 5, 500)
    steps = chain.call("anyone", "provenance", "lot-7")
    assert [(s["org"], s["step"], s["location"]) for s in steps] == [
        ("farm", "created", "Almeria"),
        ("farm", "shipped", "Almeria"),
        ("truck", "loaded", "Almeria"),
        ("truck", "delivered", "Madrid"),
        ("shop", "shelved", "Madrid"),
    ]
    assert [s["height"] for s in steps] == [1, 2, 3, 4, 5]
    assert steps[2]["tx_id"] == f"{3:064x}"
    assert all(s["timestamp_ms"] == 1_700_000_000_000 for s in steps)
    assert [name for name, _ in chain.events] == [
        "BatchCreated",
        "BatchTransferred",
        "BatchReceived",
        "BatchTransferred",
        "BatchReceived",
    ]
    assert chain.events[1][1] == {
        "batch_id": "lot-7",
        "from": "farm",
        "to": "truck",
        "step": "shipped",
        "location": "Almeria",
    }


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ([("farm", "create_batch", "b", "x", "y", 0)], "quantity_kg must be in"),
        ([("farm", "create_batch", "b", "x", "y", True)], "quantity_kg must be an integer"),
        ([("farm", "create_batch", "b", "x", "y", "5")], "quantity_kg must be an integer"),
        ([("farm", "create_batch", "", "x", "y", 5)], "batch_id must be a str"),
        ([("farm", "create_batch", "b\x00c", "x", "y", 5)], "may not contain"),
        ([("farm", "create_batch", "b", "x", "y", 5)] * 2, "already exists"),
        ([("farm", "transfer", "nope", "truck", "s", "l")], "unknown batch 'nope'"),
        (
            [("farm", "create_batch", "b", "x", "y", 5), ("truck", "transfer", "b", "shop", "s", "l")],
            "only the holder",
        ),
        (
            [("farm", "create_batch", "b", "x", "y", 5), ("farm", "transfer", "b", "farm", "s", "l")],
            "its own holder",
        ),
        (
            [("farm", "create_batch", "b", "x", "y", 5), ("truck", "receive", "b", "s", "l")],
            "was not handed to truck",
        ),
        (
            [
                ("farm", "create_batch", "b", "x", "y", 5),
                ("farm", "transfer", "b", "truck", "s", "l"),
                ("farm", "transfer", "b", "shop", "s", "l"),
            ],
            "must receive it first",
        ),
        (
            [
                ("farm", "create_batch", "b", "x", "y", 5),
                ("farm", "transfer", "b", "truck", "s", "l"),
                ("shop", "receive", "b", "s", "l"),
            ],
            "was not handed to shop",
        ),
        (
            [("farm", "create_batch", "b", "x", "y", 5), ("farm", "transfer", "b", "truck", "s" * 200, "l")],
            "step must be",
        ),
    ],
)
def test_invalid_calls_fail_with_a_clear_message(
    contract: CompiledContract, calls: list[tuple[Any, ...]], message: str
) -> None:
    chain = Chain(contract)
    *setup, last = calls
    for org, method, *args in setup:
        chain.call(org, method, *args)
    org, method, *args = last
    with pytest.raises(ContractError, match=message):
        chain.call(org, method, *args)


def test_failed_calls_do_not_change_the_batch(contract: CompiledContract) -> None:
    chain = Chain(contract)
    chain.call("farm", "create_batch", "b", "beans", "Lima", 20)
    before = dict(chain.store)
    with pytest.raises(ContractError):
        chain.call("thief", "transfer", "b", "thief", "stolen", "night")
    assert chain.store == before


def test_the_same_calls_cost_the_same_steps(contract: CompiledContract) -> None:
    used = []
    for _ in range(2):
        meter = Meter(100_000)
        contract.invoke(FakeCtx(), "create_batch", ["b", "beans", "Lima", 20], meter)
        used.append(meter.used)
    assert used[0] == used[1] > 0
