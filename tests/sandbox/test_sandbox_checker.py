"""The deploy-time check: every refused construct is reported with its line."""

from __future__ import annotations

import ast
import builtins

import pytest
from sandbox_helpers import ORDINARY_CONTRACT, TRACEABILITY_PATH, method_contract

from consortia.execution.sandbox import BUILTIN_NAMES, SandboxViolation, check_source
from consortia.execution.sandbox.limits import AST_DEPTH_MAX, SOURCE_CHARS_MAX
from consortia.execution.sandbox.safe_builtins import SAFE_BUILTINS

# (statement inside a method body, a fragment of the expected problem). The statement is on
# line 4 of the source method_contract builds.
REFUSED_IN_METHOD = [
    ("import os", "`import`"),
    ("from os import path", "imports may stand only at module level"),
    ("x = ().__class__", "'__class__'"),
    ("x = '{0.__class__}'.format(1)", "'format'"),
    ("x = '{a}'.format_map({})", "'format_map'"),
    ("x = (y for y in []).gi_frame", "'gi_frame'"),
    ("x = self.m.func_globals", "'func_globals'"),
    ("x = self.f_locals", "'f_locals'"),
    ("x = self.tb_next", "'tb_next'"),
    ("x = self.co_code", "'co_code'"),
    ("x = self.cr_frame", "'cr_frame'"),
    ("x = int.mro()", "'mro'"),
    ("x = open('/etc/passwd')", "'open' is not available"),
    ("x = __import__('os')", "'__import__'"),
    ("x = eval('1')", "'eval' is not available"),
    ("x = exec", "'exec' is not available"),
    ("x = getattr(self, 'ctx')", "'getattr' is not available"),
    ("x = type(self)", "'type' is not available"),
    ("x = object()", "'object' is not available"),
    ("x = vars()", "'vars' is not available"),
    ("x = globals()", "'globals' is not available"),
    ("print(1)", "'print' is not available"),
    ("x = id(self)", "'id' is not available"),
    ("x = hash('a')", "'hash' is not available"),
    ("x = set()", "'set' is not available"),
    ("x = frozenset()", "'frozenset' is not available"),
    ("x = float(1)", "'float' is not available"),
    ("x = iter([])", "'iter' is not available"),
    ("x = undefined_name", "name 'undefined_name' is not defined"),
    ("x = _private", "'_private'"),
    ("self._x = 1", "'_x'"),
    ("x = 1.5", "float literals"),
    ("x = 1e3", "float literals"),
    ("x = 2j", "complex literals"),
    ("x = 7 / 2", "`/` operator"),
    ("x = 1\nx /= 2", "`/` operator"),
    ("x = {1, 2}", "set literals"),
    ("x = {y for y in 'ab'}", "set comprehensions"),
    ("global g", "`global`"),
    ("x = 1\ndef f():\n    nonlocal x", "`nonlocal`"),
    ("try:\n    pass\nexcept:\n    pass", "bare `except:`"),
    ("try:\n    pass\nexcept BaseException:\n    pass", "'BaseException' is not available"),
    ("x = [1]\ndel self.ctx", "`del` of attributes"),
    ("x = [1]\ndel x[0:1]", "slice assignment and deletion"),
    ("x = [1]\nx[0:1] = [2]", "slice assignment and deletion"),
    ("a, *b = [1, 2]", "starred assignment targets"),
    ("for self.x in []:\n    pass", "loop variables must be plain names"),
    ("yield 1", "`yield`"),
    ("x = lambda: (yield)", "`yield`"),
    ("assert 1", "`assert`"),
    ("with x:\n    pass", "`with`"),
    ("async def f():\n    pass", "`async def`"),
    ("@staticmethod\ndef f():\n    pass", "the only decorator allowed is @view"),
    ("class Inner:\n    pass", "classes may be defined only at module level"),
    ("def f(x=[]):\n    pass", "default values must be constants"),
    ("def f(x={}):\n    pass", "default values must be constants"),
    ("def f(_x):\n    pass", "'_x'"),
    ("self.m(_k=1)", "'_k'"),
    ("x = f'{self.ctx:{10}}'", "format specs must be constant"),
    ("x = f'{1:>1000}'", "widths and precisions are limited"),
    ("x = f'{1:.3f}'", "no float or locale formats"),
    ("x = f'{1:n}'", "no float or locale formats"),
    ("x = [1][0, 1:2]", "extended (multi-dimensional) slicing"),
    ("try:\n    pass\nfinally:\n    return 1", "`return` inside `finally`"),
    ("while True:\n    try:\n        pass\n    finally:\n        break", "`break` inside `finally`"),
    ("while True:\n    try:\n        pass\n    finally:\n        continue", "`continue` inside `finally`"),
    ("match self:\n    case _:\n        pass", "`match`"),
    ("x = [y for y in [1] if (z := 1) < (w := 2) < 3]", None),  # allowed
    ("x = [y for y in (1 if 0 < len('a') < 2 else 2,)]", "chained comparison inside a comprehension"),
]


@pytest.mark.parametrize(("statement", "fragment"), REFUSED_IN_METHOD)
def test_forbidden_construct_is_refused_with_its_line(statement: str, fragment: str | None) -> None:
    source = method_contract(statement)
    if fragment is None:
        check_source(source)
        return
    with pytest.raises(SandboxViolation) as info:
        check_source(source)
    problems = info.value.problems
    assert any(fragment in p for p in problems), problems
    for problem in problems:
        assert problem.startswith("line ")
    matching = [p for p in problems if fragment in p]
    line = int(matching[0].split(":")[0].removeprefix("line "))
    assert 4 <= line <= 4 + statement.count("\n")


MODULE_LEVEL = [
    ("import os", 1, "`import`"),
    ("from os import path", 1, "only `from consortia.contract import ...`"),
    ("from consortia.contract import *", 1, "`*` can't be imported"),
    ("from consortia.contract import Meter", 1, "`Meter` can't be imported"),
    ("from consortia.contract import Contract as _C", 1, "'_C'"),
    ("CACHE = {}", 1, "module-level values must be constants"),
    ("ITEMS = [1, 2]", 1, "module-level values must be constants"),
    ("x = 1\nx += 1", 2, "only imports, functions, classes and constant assignments"),
    ("for i in range(3):\n    pass", 1, "only imports, functions, classes and constant assignments"),
    ("print('hi')", 1, "only imports, functions, classes and constant assignments"),
    ("class A(list):\n    pass", 1, "a class may derive only from"),
    ("class A(Contract, metaclass=None):\n    pass", 1, "class keywords"),
    ("@view\nclass A(Contract):\n    pass", 2, "class decorators"),
    ("class A(Contract):\n    cache = {}", 2, "class-level values must be constants"),
    ("class A(Contract):\n    for i in []:\n        pass", 2, "a class body may hold only methods"),
    ("def _helper():\n    pass", 1, "'_helper'"),
    ("x = 10 ** 700 if 1 else 2", 1, "module-level values must be constants"),
    ("x = " + "1" * 700, 1, "numbers of 600 or more digits"),
    ("x = 0x" + "f" * 1100, 1, "integer literals over 4096 bits"),
    ("def f(:\n    pass", 1, "syntax error"),
]


@pytest.mark.parametrize(("source", "line", "fragment"), MODULE_LEVEL)
def test_module_level_rules(source: str, line: int, fragment: str) -> None:
    with pytest.raises(SandboxViolation) as info:
        check_source(source)
    problems = info.value.problems
    assert any(p.startswith(f"line {line}: ") and fragment in p for p in problems), problems


def test_all_problems_are_reported_in_line_order() -> None:
    source = "import os\n\nclass T(Contract):\n    def m(self):\n        x = 1.5\n        return open(x)\n"
    with pytest.raises(SandboxViolation) as info:
        check_source(source)
    lines = [int(p.split(":")[0].removeprefix("line ")) for p in info.value.problems]
    assert lines == [1, 5, 6]
    assert str(info.value) == "; ".join(info.value.problems)


def test_too_deep_and_too_long_sources_are_refused_deterministically() -> None:
    deep = "x = " + "-" * 30_000 + "1"  # the parser itself gives up
    nested = "x = " + "[" * 150 + "1" + "]" * 150  # parses, but nests past AST_DEPTH_MAX
    messages = []
    for source in (deep, nested, "x = 1" + "+1" * 5_000):
        with pytest.raises(SandboxViolation) as info:
            check_source(source)
        messages.append(info.value.problems)
    assert (
        messages[0]
        == messages[1]
        == messages[2]
        == [f"line 1: the source nests deeper than {AST_DEPTH_MAX} levels"]
    )
    with pytest.raises(SandboxViolation, match="characters; the limit is"):
        check_source("x = 1\n" * (SOURCE_CHARS_MAX // 6 + 1))
    with pytest.raises(SandboxViolation, match="must be a str"):
        check_source(b"x = 1")  # type: ignore[arg-type]


def test_ordinary_contract_code_passes() -> None:
    tree = check_source(ORDINARY_CONTRACT)
    assert isinstance(tree, ast.Module)


def test_traceability_sample_passes_the_check() -> None:
    check_source(TRACEABILITY_PATH.read_text())


def test_builtin_names_match_the_runtime_builtins() -> None:
    runtime_names = set(SAFE_BUILTINS) - {"__build_class__"}
    assert runtime_names == set(BUILTIN_NAMES) - {"True", "False", "None"}
    # Nothing that reaches the outside world is on the list.
    for name in (
        "open",
        "eval",
        "exec",
        "compile",
        "getattr",
        "setattr",
        "type",
        "object",
        "vars",
        "print",
        "id",
    ):
        assert name not in BUILTIN_NAMES
        assert hasattr(builtins, name)
