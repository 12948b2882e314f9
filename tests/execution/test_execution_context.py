"""The contract-facing context: keys, values, ranges, events, read-only mode and steps."""

from __future__ import annotations

from typing import Any

import pytest
from execution_harness import DictState
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consortia.execution.context import (
    RANGE_ITEMS_MAX,
    STEPS_GET,
    STEPS_PUT,
    Context,
    SystemContext,
    TxEnv,
    make_context,
)
from consortia.execution.contract import ContractError
from consortia.execution.keys import contract_key
from consortia.execution.overlay import Overlay
from consortia.execution.sandbox import Meter, OutOfSteps
from consortia.types import Caller, Event


class NoRuntime:
    def resolve(self, name: str, state: Overlay) -> None:
        return None

    def compile(self, source: str) -> Any:
        raise NotImplementedError

    def config_problem(self, config: Any) -> None:
        return None


def make(
    read_only: bool = False, steps: int = 10**9, contract: str = "demo"
) -> tuple[Context, Overlay, TxEnv]:
    env = TxEnv(
        caller=Caller("org1", "client", "c1", b"h", {"dept": "x"}),
        channel="main",
        height=7,
        timestamp_ms=7000,
        tx_id=b"\x01\x02",
        meter=Meter(steps),
        runtime=NoRuntime(),
    )
    overlay = Overlay(DictState())
    return make_context(env, contract, overlay, read_only), overlay, env


def test_facts_and_private_caller_copy() -> None:
    ctx, _, env = make()
    assert (ctx.height, ctx.timestamp_ms, ctx.tx_id, ctx.channel) == (7, 7000, "0102", "main")
    ctx.caller.attributes["dept"] = "changed"
    assert env.caller is ctx.caller  # one copy per transaction, shared by its contexts
    assert type(ctx) is Context
    assert type(make(contract="token")[0]) is SystemContext


def test_values_round_trip_and_live_in_the_namespace() -> None:
    ctx, overlay, _ = make()
    value = {"a": [1, "two", b"3", None, True], "b": {"c": -(2**63)}}
    ctx.put("k", value)
    assert ctx.get("k") == value
    assert overlay.get(contract_key("demo", "k")) is not None
    ctx.delete("k")
    assert ctx.get("k") is None
    assert ctx.get("never") is None


@pytest.mark.parametrize("bad", [1.5, {1: 2}, object(), {"x": [0.1]}, 2**64, "\ud800"])
def test_non_plain_values_are_refused(bad: Any) -> None:
    ctx, overlay, _ = make()
    with pytest.raises(ContractError):
        ctx.put("k", bad)
    assert overlay.writes() == []


@pytest.mark.parametrize("key", ["", "a" * 257, "a\x00b", "\x00\x00", 5, None, b"k", "\udc00"])
def test_bad_keys_are_refused(key: Any) -> None:
    ctx, _, _ = make()
    with pytest.raises(ContractError):
        ctx.get(key)
    with pytest.raises(ContractError):
        ctx.put(key, 1)


def test_composite_keys_and_prefix_scans() -> None:
    ctx, _, _ = make()
    for owner, item in [("alice", "car"), ("alice", "house"), ("alice2", "boat"), ("bob", "car")]:
        ctx.put(ctx.composite_key("asset", owner, item), item)
    ctx.put("plain", 1)
    alice = ctx.prefix(ctx.composite_key("asset", "alice"))
    assert [v for _, v in alice] == ["car", "house"]
    assert ctx.split_composite_key(alice[0][0]) == ("asset", ["alice", "car"])
    assert len(ctx.prefix(ctx.composite_key("asset"))) == 4
    for bad in [("",), ("a", "b\x00")]:
        with pytest.raises(ContractError):
            ctx.composite_key(*bad)
    with pytest.raises(ContractError):
        ctx.split_composite_key("plain")


def test_range_bounds_limits_and_paging() -> None:
    ctx, _, _ = make()
    for i in range(10):
        ctx.put(f"k{i}", i)
    assert [k for k, _ in ctx.range("k2", "k5")] == ["k2", "k3", "k4"]
    assert len(ctx.range("", "")) == 10
    page = ctx.range("", "", 4)
    assert [v for _, v in page] == [0, 1, 2, 3]
    rest = ctx.range(page[-1][0] + "\x00", "", 100)
    assert [v for _, v in rest] == list(range(4, 10))
    assert ctx.range("k5", "k2") == []
    for limit in (0, RANGE_ITEMS_MAX + 1, True):
        with pytest.raises(ContractError):
            ctx.range("", "", limit)


def test_namespaces_are_isolated() -> None:
    env_ctx, overlay, env = make()
    env_ctx.put("k", 1)
    other = make_context(env, "other", overlay, False)
    assert other.get("k") is None
    assert other.range("", "") == []


def test_read_only_context_refuses_writes_and_events() -> None:
    ctx, overlay, env = make(read_only=True)
    with pytest.raises(ContractError):
        ctx.put("k", 1)
    with pytest.raises(ContractError):
        ctx.delete("k")
    with pytest.raises(ContractError):
        ctx.emit("E", 1)
    assert overlay.writes() == [] and env.events == []


def test_events_are_copied_and_bounded() -> None:
    ctx, _, env = make()
    payload = {"n": [1]}
    ctx.emit("Moved", payload)
    payload["n"].append(2)
    assert env.events == [Event("demo", "Moved", {"n": [1]})]
    with pytest.raises(ContractError):
        ctx.emit("", None)
    with pytest.raises(ContractError):
        ctx.emit("E", 0.5)


def test_steps_are_charged_per_operation() -> None:
    ctx, _, env = make()
    ctx.put("k", "v")
    after_put = env.meter.used
    assert after_put == STEPS_PUT
    ctx.get("k")
    assert env.meter.used == after_put + STEPS_GET
    ctx.put("big", "x" * 1000)
    assert env.meter.used >= after_put + STEPS_GET + STEPS_PUT + 1000 // 32


def test_running_out_of_steps_raises_out_of_steps() -> None:
    ctx, _, _ = make(steps=100)
    with pytest.raises(OutOfSteps):
        for i in range(100):
            ctx.put(f"k{i}", i)


@settings(max_examples=50, deadline=None)
@given(
    parts=st.lists(
        st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=5),
        min_size=1,
        max_size=4,
    )
)
def test_composite_key_round_trip(parts: list[str]) -> None:
    assume(parts[0] != "")
    ctx, _, _ = make()
    key = ctx.composite_key(*parts)
    assert ctx.split_composite_key(key) == (parts[0], parts[1:])


def test_system_checked_paths_give_what_the_checking_paths_give() -> None:
    checking, checking_overlay, checking_env = make(contract="token")
    checked, checked_overlay, checked_env = make(contract="token")
    assert isinstance(checked, SystemContext)
    key = "\x00balance\x00org1/c1\x00"
    payload = {"amount": 5, "from": "org1/c1", "to": "org2/c2"}
    checking.put(key, 2**63 - 1)
    checking.emit("Moved", dict(payload))
    assert checking.get(key) == 2**63 - 1 and checking.get("absent") is None
    state_key = checked.state_key(key)
    checked.put_checked(state_key, 2**63 - 1)
    checked.emit_checked("Moved", dict(payload))
    assert checked.get_at(state_key) == 2**63 - 1 and checked.get_at(checked.state_key("absent")) is None
    assert checked_overlay.writes() == checking_overlay.writes()
    assert checked_env.events == checking_env.events
    # The same key order as the checking path's decoded copy (sorted).
    assert [list(e.payload) for e in checked_env.events] == [list(e.payload) for e in checking_env.events]
    assert checked_env.meter.used == checking_env.meter.used
    for bad in ("", "a\x00b", "x" * 257):
        with pytest.raises(ContractError):
            checked.state_key(bad)
    read_only, _, _ = make(read_only=True, contract="token")
    assert isinstance(read_only, SystemContext)
    with pytest.raises(ContractError, match="read-only"):
        read_only.put_checked(state_key, 1)
    with pytest.raises(ContractError, match="read-only"):
        read_only.emit_checked("Moved", payload)
