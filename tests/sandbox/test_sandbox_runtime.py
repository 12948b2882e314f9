"""The safe runtime: loading, invoking, typed errors, isolation and Python-compatible results."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_helpers import ORDINARY_CONTRACT, FakeCtx, compiled, method_contract, outcome, run

from consortia.crypto import sha256
from consortia.execution.contract import ContractError
from consortia.execution.sandbox import (
    BadArguments,
    ContractRuntimeError,
    Meter,
    OutOfSteps,
    SandboxViolation,
    UnknownMethod,
    compile_contract,
)

COUNTER = """
from consortia.contract import Contract, ContractError, view

class Counter(Contract):
    def incr(self, n, step=1):
        value = (self.ctx.get("n") or 0) + n * step
        self.ctx.put("n", value)
        return value

    def fail(self, why):
        raise ContractError(why)

    def crash(self):
        return {}["missing"]

    @view
    def read(self):
        return self.ctx.get("n")
"""


def test_compiled_contract_describes_itself() -> None:
    contract = compile_contract(COUNTER, steps_max_default=1234)
    assert contract.name == "Counter"
    assert contract.source_hash == sha256(COUNTER.encode())
    assert contract.methods == {"crash": False, "fail": False, "incr": False, "read": True}
    assert list(contract.methods) == sorted(contract.methods)
    assert contract.cls.__name__ == "Counter"
    assert contract.steps_max_default == 1234


def test_invoke_runs_a_fresh_instance_against_the_context() -> None:
    contract = compile_contract(COUNTER)
    ctx = FakeCtx()
    assert contract.invoke(ctx, "incr", [5], Meter(10_000)) == 5
    assert contract.invoke(ctx, "incr", [2, 3], Meter(10_000)) == 11
    assert contract.invoke(ctx, "read", [], Meter(10_000)) == 11
    assert ctx.store == {"n": 11}


def test_invoke_raises_typed_errors() -> None:
    contract = compile_contract(COUNTER)
    with pytest.raises(UnknownMethod, match=r"Counter\.nope"):
        contract.invoke(FakeCtx(), "nope", [], Meter(100))
    with pytest.raises(UnknownMethod):
        contract.invoke(FakeCtx(), "__init__", [], Meter(100))
    with pytest.raises(BadArguments, match="takes 1 to 2 arguments, got 0"):
        contract.invoke(FakeCtx(), "incr", [], Meter(100))
    with pytest.raises(BadArguments, match="got 3"):
        contract.invoke(FakeCtx(), "incr", [1, 2, 3], Meter(100))
    with pytest.raises(ContractError, match=r"^no way$"):
        contract.invoke(FakeCtx(), "fail", ["no way"], Meter(100))
    with pytest.raises(ContractRuntimeError) as info:
        contract.invoke(FakeCtx(), "crash", [], Meter(100))
    assert str(info.value) == "KeyError: 'missing'"
    with pytest.raises(OutOfSteps):
        contract.invoke(FakeCtx(), "incr", [1], Meter(2))


def test_a_type_error_inside_a_method_is_not_a_bad_argument() -> None:
    kind, message, _ = outcome("return len(5)")
    assert (kind, message) == ("ContractRuntimeError", "TypeError: object of type 'int' has no len()")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("x = 1", "defines no Contract subclass"),
        (
            "class A(Contract):\n    pass\nclass B(Contract):\n    pass",
            "line 3: a source defines one Contract subclass",
        ),
        ("class A(Contract):\n    def ctx(self):\n        pass", "may not be named 'ctx'"),
        (
            "class A(Contract):\n    def m(self):\n        return 1\n    def m(self, x, x):\n        pass",
            "line 4: syntax error",
        ),
        ("def f():\n    break\nclass A(Contract):\n    pass", "line 2: syntax error"),
    ],
)
def test_sources_that_do_not_define_one_usable_contract_are_refused(source: str, fragment: str) -> None:
    with pytest.raises(SandboxViolation) as info:
        compile_contract(source)
    assert fragment in str(info.value)


def test_error_messages_are_deterministic_and_address_free() -> None:
    for body in (
        "raise ValueError(self)",
        "raise KeyError(self.m)",
        "return self.m + 1",
        "raise ValueError(T)",
    ):
        kind, message, _ = outcome(body)
        assert kind == "ContractRuntimeError"
        assert not re.search(r"0x[0-9a-f]{6,}", message), message
    assert outcome("raise ValueError(self)")[1] == "ValueError: <T object>"
    assert outcome("raise ContractError([1, self])")[1] == "<list>"
    assert outcome("raise ContractError('x' * 5000)")[1].endswith("...")
    assert (
        outcome("return f'{self.m} {T.m} {T} {self}'")[1]
        == "<bound method T.m> <function T.m> <class 'T'> <T object>"
    )
    assert outcome("raise IndexError('a', 2)")[1] == "IndexError: ('a', 2)"


def test_contracts_reach_only_the_documented_context_api() -> None:
    assert outcome("return self.ctx.secret")[0] == "ContractRuntimeError"
    assert "no attribute 'secret'" in outcome("return self.ctx.secret")[1]
    result, _ = run(
        "c = self.ctx.caller\n"
        "return [c.org, c.role, c.subject, c.attributes, self.ctx.height, self.ctx.timestamp_ms,\n"
        "        self.ctx.tx_id]"
    )
    assert result == ["org1", "client", "client1@org1", {"dept": "qa"}, 7, 1_700_000_000_000, "ab" * 32]


@pytest.mark.parametrize(
    "body",
    [
        "T.shared = 1",
        "view.consortia_view = False",
        "list.clear = None",
        "ContractError.x = 1",
        "def f():\n    pass\nf.cache = {}",
        "self.ctx.height = 1",
        "(1).real = 2",
        "return {}.keys().mapping",
        "return (5).is_integer()",
        "return [].__len__",
        "return self.ctx.get.func",
    ],
)
def test_shared_or_foreign_objects_cannot_be_changed_or_explored(body: str) -> None:
    try:
        kind = outcome(body)[0]
    except SandboxViolation:
        kind = "SandboxViolation"
    assert kind in ("ContractRuntimeError", "SandboxViolation")


def test_instance_state_never_outlives_a_call() -> None:
    source = method_contract("if args[0]:\n    self.seen = 1\nreturn isinstance(self, T) and self.seen")
    contract = compile_contract(source)
    assert contract.invoke(FakeCtx(), "m", [True], Meter(1_000)) == 1
    with pytest.raises(ContractRuntimeError, match="no attribute 'seen'"):
        contract.invoke(FakeCtx(), "m", [False], Meter(1_000))


def test_host_failures_are_not_contract_failures() -> None:
    class BrokenCtx(FakeCtx):
        def get(self, key: str) -> object:
            raise MemoryError

    contract = compiled("try:\n    return self.ctx.get('k')\nexcept Exception:\n    return 'swallowed'")
    with pytest.raises(MemoryError):
        contract.invoke(BrokenCtx(), "m", [], Meter(1_000))


def test_integers_convert_to_text_beyond_the_interpreter_digit_limit() -> None:
    result, _ = run("x = 10 ** 1000 + 7\nreturn str(x), f'{x}', len(str(-x))")
    assert result[0] == result[1] == str(10**1000 + 7)
    assert result[2] == 1002
    assert outcome("return int('1' * 601)")[0] == "ContractError"
    assert run("return int('f' * 700, 16) > 0")[0] is True


def test_builtins_behave_like_python_for_ordinary_values() -> None:
    result, _ = run(
        """
        words = "b a c a".split()
        return [
            sorted(words), sorted(words, key=lambda w: w, reverse=True), min(words), max(3, 9, 4),
            sum([1, 2, 3], 10), any([0, 0]), all([1, 1]), list(zip("ab", [1, 2])),
            list(enumerate("xy", 1)), list(reversed([1, 2, 3])), list(filter(None, [0, 1, 2])),
            list(map(len, words)), dict([("a", 1)], b=2), tuple("ab"), bytes([65, 66]), bytes(3),
            str(b"x"), str(None), int("42"), int(True), divmod(-7, 2), abs(-4), hex(255), ord("a"),
            chr(98), bool([]), isinstance(words, list), isinstance(1, (str, int)), isinstance(True, int),
            "x".encode(), b"\\xc3\\xa9".decode("utf-8"), int.from_bytes(b"\\x01\\x00", "big"),
            bytes.fromhex("ff00"), (258).to_bytes(2, "big"), "a-b".replace("-", "+"), "ab".center(6, "*"),
            "a,b".partition(","), [1, 2, 2].count(2), (1, 2).index(2), {"a": 1}.get("b", 0),
            "%" in "100%", 3 in range(5), "q" in range(5), (1, 2) < (1, 3), [1] * 3, "ab" * 2,
        ]
        """
    )
    assert result == [
        ["a", "a", "b", "c"], ["c", "b", "a", "a"], "a", 9,
        16, False, True, [("a", 1), ("b", 2)],
        [(1, "x"), (2, "y")], [3, 2, 1], [1, 2],
        [1, 1, 1, 1], {"a": 1, "b": 2}, ("a", "b"), b"AB", b"\x00\x00\x00",
        "b'x'", "None", 42, 1, (-4, 1), 4, "0xff", 97,
        "b", False, True, True, True,
        b"x", "é", 256,
        b"\xff\x00", b"\x01\x02", "a+b", "**ab**",
        ("a", ",", "b"), 2, 1, 0,
        True, True, False, True, [1, 1, 1], "abab",
    ]  # fmt: skip


def test_codecs_outside_the_portable_few_are_refused() -> None:
    assert outcome("return 'x'.encode('mbcs')")[0] == "ContractError"
    assert outcome("return b'x'.decode('utf-8', 'surrogateescape')")[0] == "ContractError"
    assert outcome("return bytes('x', 'rot13')")[0] == "ContractError"


def test_set_producing_operations_are_refused() -> None:
    for body in ("return {'a': 1}.keys() & ['a']", "return {'a': 1}.items() | []", "return [] ^ {}.keys()"):
        assert outcome(body)[0] == "ContractError"


def test_a_contract_using_most_of_the_language_runs() -> None:
    contract = compile_contract(ORDINARY_CONTRACT)
    assert contract.name == "Ledger"
    assert contract.methods == {"caller": True, "get": True, "put": False}
    ctx = FakeCtx()
    items, ok, n = contract.invoke(ctx, "put", ["key", [3, 0, 1]], Meter(100_000))
    assert (items, ok, n) == ([3, 1, "a"], True, 3)
    assert ctx.store["key"] == {"items": [3, 1, "a"], "total": 0, "tag": "'key':   0"}
    assert contract.invoke(ctx, "caller", [], Meter(1_000)) == [
        "org1",
        "client",
        7,
        1_700_000_000_000,
        "ab" * 32,
    ]


plain_data = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(value=plain_data)
def test_str_and_fstrings_match_python_for_plain_data(value: object) -> None:
    result, _ = run("v = args[0]\nreturn [str(v), f'{v}', f'{v!r}', f'{v=}', f'{v!a}']", value)
    assert result == [str(value), f"{value}", f"{value!r}", f"v={value!r}", f"{value!a}"]


ints = st.integers(-(2**200), 2**200)


@settings(max_examples=60, deadline=None)
@given(a=ints, b=ints, k=st.integers(0, 40))
def test_integer_arithmetic_matches_python(a: int, b: int, k: int) -> None:
    body = """
    a, b, k = args
    out = [a + b, a - b, a * b, a & b, a | b, a ^ b, -a, ~a, abs(a), a << k, a >> k, a ** 2, k ** k,
           a == b, a != b, a < b, a <= b, a > b, a >= b, 0 <= a < b, a in [b, 1], divmod(a, b or 1)]
    if b:
        out += [a // b, a % b]
    x = a
    x += b
    x *= 3
    x -= 1
    out.append(x)
    return out
    """
    result, _ = run(body, a, b, k)
    expected = [
        a + b, a - b, a * b, a & b, a | b, a ^ b, -a, ~a, abs(a), a << k, a >> k, a**2, k**k,
        a == b, a != b, a < b, a <= b, a > b, a >= b, 0 <= a < b, a in [b, 1], divmod(a, b or 1),
    ]  # fmt: skip
    if b:
        expected += [a // b, a % b]
    expected.append((a + b) * 3 - 1)
    assert result == expected


@settings(max_examples=60, deadline=None)
@given(s=st.text(max_size=12), t=st.text(max_size=3), items=st.lists(st.integers(-5, 5), max_size=8))
def test_sequence_operations_match_python(s: str, t: str, items: list[int]) -> None:
    body = """
    s, t, items = args
    copy = list(items)
    copy.sort()
    copy.append(len(s))
    copy.extend(items[1:3])
    copy.insert(0, -9)
    d = {}
    for i in items:
        d[str(i)] = d.get(str(i), 0) + 1
    return [s + t, s * 2, s[1:], s[::-1], s[-1:], t in s, s.upper(), s.split(t or None), t.join([s, s]),
            s.replace(t, "x") if t else s, s.count(t) if t else 0, s.startswith(t), sorted(items),
            items[::2], copy, d, list(d.items()), min(items, default=None), max(items, default=None),
            sum(items), [i for i in items if i > 0], {k: v for k, v in d.items() if v > 1}, s == t]
    """
    result, _ = run(body, s, t, items)
    copy = [*sorted(items), len(s), *items[1:3]]
    copy.insert(0, -9)
    d: dict[str, int] = {}
    for i in items:
        d[str(i)] = d.get(str(i), 0) + 1
    expected = [
        s + t, s * 2, s[1:], s[::-1], s[-1:], t in s, s.upper(), s.split(t or None), t.join([s, s]),
        s.replace(t, "x") if t else s, s.count(t) if t else 0, s.startswith(t), sorted(items),
        items[::2], copy, d, list(d.items()), min(items, default=None), max(items, default=None),
        sum(items), [i for i in items if i > 0], {k: v for k, v in d.items() if v > 1}, s == t,
    ]  # fmt: skip
    assert result == expected


def test_view_marks_only_the_contracts_own_functions() -> None:
    assert outcome("view(list)")[0] == "ContractRuntimeError"
    assert outcome("view(lambda: 0)")[0] == "ContractRuntimeError"
    assert outcome("def f():\n    pass\nreturn view(f) is f")[1] is True


def test_class_level_helpers_of_wrapped_types() -> None:
    result, _ = run(
        "return [str.maketrans('ab', 'xy'), 'abc'.translate(str.maketrans('ab', 'xy')),\n"
        "        dict.fromkeys(['a', 'b'], 0), bytes.maketrans(b'a', b'b')[97],\n"
        "        int.from_bytes(b'\\x02', 'big')]"
    )
    assert result == [{97: 120, 98: 121}, "xyc", {"a": 0, "b": 0}, 98, 2]
    assert outcome("return int.from_bytes(b'\\xff' * 600, 'big')")[0] == "ValueTooLarge"
    assert outcome("return dict.items")[0] == "ContractRuntimeError"


def test_no_shared_object_is_reachable_through_helpers() -> None:
    # Bound builtin methods and class-level helpers must not hand out their internals.
    for body in (
        "return 'x'.upper.args",
        "return dict.fromkeys.args",
        "return 'x'.upper.func",
        "return [].append.args",
    ):
        assert outcome(body)[0] == "ContractRuntimeError", body
    result, _ = run("try:\n    raise ValueError('a', 1)\nexcept ValueError as e:\n    return e.args")
    assert result == ("a", 1)
