"""The contract guide's example compiles and behaves as the guide says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sandbox_helpers import FakeCtx

from consortia.execution.contract import ContractError
from consortia.execution.sandbox import BUILTIN_NAMES, Meter, compile_contract

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


def test_the_guide_example_runs() -> None:
    text = GUIDE.read_text()
    source = re.findall(r"```python\n(.*?)```", text, re.DOTALL)[0]
    contract = compile_contract(source)
    assert contract.methods == {"award": False, "balance": True}
    ctx = FakeCtx(org="retailer")
    assert contract.invoke(ctx, "award", ["alice", 5], Meter(10_000)) == 5
    assert contract.invoke(ctx, "balance", ["alice"], Meter(10_000)) == 5
    assert ctx.events == [("Awarded", {"account": "alice", "points": 5, "balance": 5})]
    with pytest.raises(ContractError, match="only the retailer"):
        contract.invoke(FakeCtx(org="bank"), "award", ["alice", 5], Meter(10_000))


def test_the_guide_lists_exactly_the_available_builtins() -> None:
    text = GUIDE.read_text()
    listed = re.search(r"Builtins available: `([^`]*)`", text)
    assert listed is not None
    assert set(listed.group(1).split()) == set(BUILTIN_NAMES)
