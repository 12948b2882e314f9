"""Step metering: runaway code ends deterministically, and step counts are a pure function."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_helpers import FakeCtx, compiled, method_contract, outcome, run

from consortia.execution.sandbox import (
    CALL_DEPTH_MAX,
    CallDepthExceeded,
    Meter,
    OutOfSteps,
    SandboxError,
    SandboxViolation,
    ValueTooLarge,
    compile_contract,
)

# A fixed program exercising loops, branches, comprehensions, lambdas, recursion and builtins.
FIXED_PROGRAM = """
n = args[0]
total = 0
for i in range(n):
    if i % 3 == 0:
        total += i
    else:
        total -= 1
squares = [i * i for i in range(n) if i % 2]
pairs = {str(i): i for i in range(5)}
words = sorted(pairs, key=lambda k: -pairs[k])
def fib(k):
    return k if k < 2 else fib(k - 1) + fib(k - 2)
return total, sum(squares), words, fib(10), "-".join(words)
"""
# Recorded once; a change here changes every receipt's step count (a consensus change).
FIXED_STEPS = {0: 3292, 10: 3477, 50: 4217}


def test_meter_charges_and_stays_exhausted() -> None:
    meter = Meter(10)
    meter.charge(4)
    meter.charge()
    assert (meter.used, meter.remaining, meter.exhausted) == (5, 5, False)
    with pytest.raises(OutOfSteps, match="exceeded 10 steps"):
        meter.charge(6)
    assert (meter.used, meter.exhausted) == (10, True)
    with pytest.raises(OutOfSteps):
        meter.charge(0)  # once spent, every further charge fails again
    assert issubclass(OutOfSteps, BaseException) and not issubclass(OutOfSteps, Exception)
    assert issubclass(CallDepthExceeded, BaseException) and not issubclass(CallDepthExceeded, Exception)


def test_meter_counts_frames() -> None:
    meter = Meter(1_000, depth_max=2)
    meter.enter(3)
    meter.enter(3)
    with pytest.raises(CallDepthExceeded):
        meter.enter(3)
    meter.leave()
    assert meter.depth == 1 and meter.used == 9
    for bad in (-1, True, "10"):
        with pytest.raises(SandboxError):
            Meter(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("while True:\n    pass", "OutOfSteps"),
        (
            "while True:\n    try:\n        while True:\n            pass\n"
            "    except Exception:\n        pass",
            "OutOfSteps",
        ),
        ("try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass", "OutOfSteps"),
        ("return [x for x in range(10**9)]", "OutOfSteps"),
        ("return list(map(lambda x: x, range(10**9)))", "OutOfSteps"),
        ("return any(x < 0 for x in range(10**9))", "OutOfSteps"),
        ("def f(n):\n    return f(n + 1)\nreturn f(0)", "CallDepthExceeded"),
        ("f = lambda n: f(n + 1)\nreturn f(0)", "CallDepthExceeded"),
        (
            "def f(n):\n    try:\n        return f(n + 1)\n"
            "    except Exception:\n        return 0\nreturn f(0)",
            "CallDepthExceeded",
        ),
        ("return sum(range(10**12))", "ValueTooLarge"),
        ("return [0] * 10**9", "ValueTooLarge"),
        ("return 2 ** 10**9", "ValueTooLarge"),
        ("return 1 << 10**9", "ValueTooLarge"),
        ("x = 3\nwhile True:\n    x = x * x", "ValueTooLarge"),
        ("s = 'ab'\nwhile True:\n    s += s", "ValueTooLarge"),
        ("l = [0]\nwhile True:\n    l.extend(l)", "ValueTooLarge"),
        ("s = 'x' * 1000\nreturn s.replace('', s).replace('', s)", "ValueTooLarge"),
        ("return ''.join(['x' * 1000] * 10000)", "ValueTooLarge"),
        ("return 'x'.rjust(10**9)", "ValueTooLarge"),
        ("return (1).to_bytes(10**9, 'big')", "ValueTooLarge"),
        ("return bytes(10**9)", "ValueTooLarge"),
        ("t = ()\nfor i in range(60):\n    t = (t, t)\nreturn {t: 1}", "ValueTooLarge"),
        ("a = [0] * 10**6\nb = [0] * 10**6\nwhile True:\n    if a == b:\n        pass", "OutOfSteps"),
        ("a = list(range(10**5))\nwhile True:\n    if -1 in a:\n        pass", "OutOfSteps"),
        ("l = []\nl.append(l)\nreturn l == l", "ValueTooLarge"),
    ],
)
def test_runaway_code_ends_quickly_with_the_right_error(body: str, error: str) -> None:
    start = time.perf_counter()
    kind, _, used = outcome(body, steps_max=1_000_000)
    assert kind == error
    assert time.perf_counter() - start < 5
    if kind == "OutOfSteps":
        assert used == 1_000_000


def test_values_too_large_are_contract_errors_the_contract_may_catch() -> None:
    body = "try:\n    x = 2 ** 10**9\nexcept ContractError as exc:\n    return str(exc)\n"
    result, _ = run(body)
    assert "over 4096 bits" in result
    assert issubclass(ValueTooLarge, Exception)


def test_step_count_of_a_fixed_program_is_a_fixed_number() -> None:
    contract = compiled(FIXED_PROGRAM)
    again = compile_contract(method_contract(FIXED_PROGRAM))
    for n, expected in FIXED_STEPS.items():
        counts = []
        for c in (contract, contract, again):
            meter = Meter(1_000_000)
            result = c.invoke(FakeCtx(), "m", [n], meter)
            counts.append(meter.used)
        assert counts == [expected] * 3, (n, counts)
        assert result[3] == 55


def test_out_of_steps_reports_the_limit_however_it_fails() -> None:
    for body in ("while True:\n    pass", "return [0 for _ in range(10**9)]", "return sum(range(10**6))"):
        kind, _, used = outcome(body, steps_max=5_000)
        assert (kind, used) == ("OutOfSteps", 5_000)


def test_comprehensions_and_generators_charge_per_element() -> None:
    def cost(body: str, n: int) -> int:
        return run(body, n)[1]

    for body in (
        "return [i for i in range(args[0])]",
        "return {i: i for i in range(args[0])}",
        "return sum(1 for _ in range(args[0]))",
        "return len(list(x for x in range(args[0])))",
        "return list(map(str, range(args[0])))",
        "return [(i, j) for i in range(args[0]) for j in range(2)]",
    ):
        c0, c10, c20 = cost(body, 0), cost(body, 10), cost(body, 20)
        assert c10 > c0
        assert c20 - c10 == c10 - c0  # the same charge for every element


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=0, max_value=300))
def test_loop_cost_is_affine_in_its_iterations(n: int) -> None:
    body = "total = 0\nfor i in range(args[0]):\n    total += i\nreturn total"
    base = run(body, 0)[1]
    per = run(body, 1)[1] - base
    result, used = run(body, n)
    assert result == n * (n - 1) // 2
    assert used == base + per * n


def test_data_proportional_operations_cost_more_for_more_data() -> None:
    small = run("return len('x' * args[0])", 1_000)[1]
    large = run("return len('x' * args[0])", 100_000)[1]
    assert large - small >= (100_000 - 1_000) >> 4
    scan_small = run("return 'q' in 'x' * args[0]", 1_000)[1]
    scan_large = run("return 'q' in 'x' * args[0]", 100_000)[1]
    assert scan_large - scan_small >= 2 * ((100_000 - 1_000) >> 4)


def test_module_code_is_metered_and_bounded() -> None:
    with pytest.raises(SandboxViolation, match="module code failed: ValueTooLarge"):
        compile_contract("X = 2 ** 100000\nclass T(Contract):\n    pass\n")
    with pytest.raises(SandboxViolation, match="line 2: module code failed: ZeroDivisionError"):
        compile_contract("A = 1\nX = A // 0\nclass T(Contract):\n    pass\n")


def test_call_depth_limit_is_independent_of_the_interpreter_limit() -> None:
    body = "def f(k):\n    return 0 if k == 0 else 1 + f(k - 1)\nreturn f(args[0])"
    assert run(body, CALL_DEPTH_MAX - 2)[0] == CALL_DEPTH_MAX - 2  # m itself is one frame
    assert outcome(body, CALL_DEPTH_MAX)[0] == "CallDepthExceeded"
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(old + 5_000)
    try:
        assert outcome(body, CALL_DEPTH_MAX)[0] == "CallDepthExceeded"
    finally:
        sys.setrecursionlimit(old)


_HASHSEED_PROGRAM = r"""
import sys
sys.path.insert(0, sys.argv[1])
from sandbox_helpers import run
body = '''
d = {}
for w in "the quick brown fox jumps over the lazy dog".split():
    d[w] = d.get(w, 0) + len(w)
keys = list(d.keys())
text = f"{d}|{sorted(d.items())}|{[k for k in d if 'o' in k]}"
return keys, text, str({"b": [1, (2, "c")], "a": None})
'''
print(repr(run(body)))
"""


def test_results_and_steps_do_not_depend_on_the_hash_seed() -> None:
    outputs = set()
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _HASHSEED_PROGRAM, str(Path(__file__).parent)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert "'the', 'quick'" in outputs.pop()


def test_meters_are_per_thread() -> None:
    # A node executes blocks on a worker thread while it answers queries on another.
    import threading

    contract = compiled("total = 0\nfor i in range(args[0]):\n    total += i % 7\nreturn total")
    expected = {
        n: run("total = 0\nfor i in range(args[0]):\n    total += i % 7\nreturn total", n)[1]
        for n in (20_000, 30_000)
    }
    used: dict[int, int] = {}

    def work(n: int) -> None:
        meter = Meter(10_000_000)
        contract.invoke(FakeCtx(), "m", [n], meter)
        used[n] = meter.used

    threads = [threading.Thread(target=work, args=(n,)) for n in expected]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads constantly
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert used == expected
