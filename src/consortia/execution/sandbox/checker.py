"""The deploy-time check: an allowlist over the syntax tree of contract source.

Every node type, name and attribute a contract may use is listed here; anything else is a
problem reported with its line. The rules close the routes out of the sandbox (dunder and
private attributes, frames, code objects, imports, dynamic attribute access), the sources
of non-determinism (floats, sets, `/`, locale-dependent formatting, assert) and state that
would outlive a call (mutable module or class values, `global`, mutable default arguments).
The runtime (see `rewrite`, `guards`, `safe_builtins`) enforces the same rules again.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator

from consortia.execution.sandbox.errors import SandboxViolation
from consortia.execution.sandbox.limits import (
    AST_DEPTH_MAX,
    FORMAT_WIDTH_MAX,
    INT_BITS_MAX,
    NUMBER_DIGITS_MAX,
    SOURCE_CHARS_MAX,
)

CONTRACT_MODULE = "consortia.contract"
IMPORTABLE = frozenset({"Contract", "ContractError", "view"})

# Names a contract may use without defining them; `safe_builtins` provides exactly these.
BUILTIN_NAMES = frozenset(
    {
        "len", "range", "min", "max", "sum", "sorted", "reversed", "enumerate", "zip", "abs",
        "all", "any", "bool", "int", "str", "bytes", "list", "dict", "tuple", "isinstance",
        "divmod", "map", "filter", "hex", "ord", "chr",
        "Exception", "ValueError", "KeyError", "IndexError",
        "True", "False", "None",
        "Contract", "ContractError", "view",
    }
)  # fmt: skip

# Classes a contract class may derive from, besides classes the source defines.
BASE_NAMES = frozenset({"Contract", "ContractError", "Exception", "ValueError", "KeyError", "IndexError"})

# Attributes that reach frames, code, globals or formatting by attribute name.
FORBIDDEN_ATTRS = frozenset(
    {"mro", "format", "format_map", "func_globals", "func_code", "im_func", "im_self"}
)
FORBIDDEN_ATTR_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_")

# Statement and expression types contract code may contain; everything else is refused.
ALLOWED_NODES: frozenset[type[ast.AST]] = frozenset(
    {
        ast.Module, ast.FunctionDef, ast.ClassDef, ast.Return, ast.Delete, ast.Assign,
        ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If, ast.Raise, ast.Try,
        ast.ImportFrom, ast.Expr, ast.Pass, ast.Break, ast.Continue,
        ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict,
        ast.ListComp, ast.DictComp, ast.GeneratorExp, ast.Compare, ast.Call,
        ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript,
        ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice,
        ast.Load, ast.Store, ast.Del,
        ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
        ast.BitOr, ast.BitXor, ast.BitAnd, ast.FloorDiv, ast.Invert, ast.Not, ast.UAdd, ast.USub,
        ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
        ast.comprehension, ast.ExceptHandler, ast.arguments, ast.arg, ast.keyword, ast.alias,
    }
)  # fmt: skip

# Why a refused node type is refused, for the common ones.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Import: "`import` (only `from consortia.contract import ...` is allowed)",
    ast.Global: "`global` (module state would outlive the call)",
    ast.Nonlocal: "`nonlocal`",
    ast.With: "`with`",
    ast.AsyncWith: "`async with`",
    ast.AsyncFunctionDef: "`async def`",
    ast.AsyncFor: "`async for`",
    ast.Await: "`await`",
    ast.Yield: "`yield` (generators are not allowed; use a list or a generator expression)",
    ast.YieldFrom: "`yield from`",
    ast.Assert: "`assert` (removed under -O; use `if not ...: raise ContractError(...)`)",
    ast.Set: "set literals (their iteration order varies between processes)",
    ast.SetComp: "set comprehensions (their iteration order varies between processes)",
    ast.Match: "`match`",
    ast.TryStar: "`except*`",
    ast.MatMult: "the `@` operator",
    ast.Div: "the `/` operator (it yields floats; use `//`)",
}

_SPEC_RE = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?([bcdoxXs]?)", re.DOTALL)
_LONG_NUMBER_RE = re.compile(rf"\d[\d_]{{{NUMBER_DIGITS_MAX - 1},}}")


def check_source(source: str) -> ast.Module:
    """Parse and check contract source; return its syntax tree.

    Raises SandboxViolation listing every problem found, each as "line N: ...".
    """
    if not isinstance(source, str):
        raise SandboxViolation(["line 1: the source must be a str"])
    if len(source) > SOURCE_CHARS_MAX:
        raise SandboxViolation(
            [f"line 1: the source has {len(source)} characters; the limit is {SOURCE_CHARS_MAX}"]
        )
    # CPython refuses decimal literals longer than a per-process setting; refuse them first so
    # every node agrees. (This also catches long digit runs inside strings: a rare false alarm.)
    match = _LONG_NUMBER_RE.search(source)
    if match is not None:
        line = source.count("\n", 0, match.start()) + 1
        raise SandboxViolation(
            [f"line {line}: numbers of {NUMBER_DIGITS_MAX} or more digits are not allowed"]
        )
    try:
        tree = ast.parse(source, filename="<contract>", mode="exec")
    except SyntaxError as exc:
        raise SandboxViolation([f"line {exc.lineno or 1}: syntax error: {exc.msg}"]) from None
    except (RecursionError, MemoryError):
        # The parser's own limits; the same message as the depth check below, so nodes agree
        # whichever of the two a borderline source trips.
        raise SandboxViolation([_too_deep()]) from None
    if _depth_exceeds(tree, AST_DEPTH_MAX):
        raise SandboxViolation([_too_deep()])
    checker = _Checker(_bound_names(tree))
    checker.check_module(tree)
    if checker.problems:
        ordered = sorted(checker.problems, key=lambda p: p[0])
        raise SandboxViolation([f"line {line}: {text}" for line, text in ordered])
    return tree


def _too_deep() -> str:
    return f"line 1: the source nests deeper than {AST_DEPTH_MAX} levels"


def _depth_exceeds(tree: ast.AST, limit: int) -> bool:
    """Iterative, so a deep tree can't exhaust the interpreter's recursion limit here."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return False


def _bound_names(tree: ast.Module) -> frozenset[str]:
    """Every name the source binds anywhere (a module-wide approximation of scopes)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
    return frozenset(names)


def _is_frozen(node: ast.expr) -> bool:
    """An expression whose value can't be mutated: constants, tuples of them, arithmetic, names."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Tuple):
        return all(_is_frozen(elt) for elt in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _is_frozen(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_frozen(node.left) and _is_frozen(node.right)
    return False


def _is_simple(node: ast.expr) -> bool:
    """Side-effect-free and cheap to evaluate twice (a name, a constant or an attribute of one)."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    return isinstance(node, ast.Attribute) and _is_simple(node.value)


def _targets(node: ast.expr) -> Iterator[ast.expr]:
    """The leaves of an assignment target (tuples and lists unpacked)."""
    if isinstance(node, ast.Tuple | ast.List):
        for elt in node.elts:
            yield from _targets(elt)
    else:
        yield node


class _Checker(ast.NodeVisitor):
    def __init__(self, bound: frozenset[str]) -> None:
        self.bound = bound
        self.problems: list[tuple[int, str]] = []
        self.classes: set[str] = set()  # module-level classes defined so far
        # Innermost-last: "function", "loop" and "finally" frames, for return/break/continue.
        self.frames: list[str] = []
        self.comprehension_iters = 0  # > 0 while checking a comprehension's iterable
        self.view_names = {"view"}  # and what `from consortia.contract import view as ...` binds

    def problem(self, node: ast.AST, text: str) -> None:
        self.problems.append((getattr(node, "lineno", 1), text))

    # -- structure ---------------------------------------------------------------------------

    def check_module(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom):
                self.check_import(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.check_class(stmt)
            elif isinstance(stmt, ast.FunctionDef | ast.Pass) or _is_docstring(stmt):
                self.visit(stmt)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                self.check_constant_assign(stmt, "module")
            elif isinstance(stmt, ast.Import):
                self.problem(stmt, _REFUSED[ast.Import])
            else:
                self.problem(
                    stmt,
                    "only imports, functions, classes and constant assignments may stand at "
                    "module level (module code runs once per node, not per call)",
                )

    def check_import(self, node: ast.ImportFrom) -> None:
        if node.module != CONTRACT_MODULE or node.level != 0:
            self.problem(node, f"only `from {CONTRACT_MODULE} import ...` is allowed, not `{node.module}`")
            return
        for alias in node.names:
            if alias.name not in IMPORTABLE:
                self.problem(node, f"`{alias.name}` can't be imported; only {', '.join(sorted(IMPORTABLE))}")
            if alias.asname is not None:
                self.check_name(node, alias.asname)
                if alias.name == "view":
                    self.view_names.add(alias.asname)

    def check_constant_assign(self, node: ast.Assign | ast.AnnAssign, where: str) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if not isinstance(target, ast.Name):
                self.problem(node, f"{where}-level assignments must assign plain names")
        if node.value is not None and not _is_frozen(node.value):
            self.problem(
                node,
                f"{where}-level values must be constants or tuples of them "
                "(a mutable value would outlive the call)",
            )
        self.visit(node)

    def check_class(self, node: ast.ClassDef) -> None:
        self.check_name(node, node.name)
        if node.decorator_list:
            self.problem(node, "class decorators are not allowed")
        if node.keywords:
            self.problem(node, "class keywords (metaclass=...) are not allowed")
        for base in node.bases:
            if not isinstance(base, ast.Name) or not (base.id in BASE_NAMES or base.id in self.classes):
                self.problem(
                    base,
                    "a class may derive only from Contract, ContractError, Exception, ValueError, "
                    "KeyError, IndexError or a class defined above it",
                )
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.Pass) or _is_docstring(stmt):
                self.visit(stmt)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                self.check_constant_assign(stmt, "class")
            else:
                self.problem(stmt, "a class body may hold only methods and constant assignments")
        self.classes.add(node.name)

    # -- generic -------------------------------------------------------------------------------

    def generic_visit(self, node: ast.AST) -> None:
        if type(node) not in ALLOWED_NODES:
            self.problem(node, _refused(node) + " is not allowed")
            return
        super().generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.problem(node, "classes may be defined only at module level")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.problem(node, "imports may stand only at module level")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.check_name(node, node.name)
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Name) and decorator.id in self.view_names):
                self.problem(decorator, "the only decorator allowed is @view")
        self.check_defaults(node.args)
        self.frames.append("function")
        self.generic_visit(node)
        self.frames.pop()

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.check_defaults(node.args)
        self.frames.append("function")
        self.generic_visit(node)
        self.frames.pop()

    def check_defaults(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            if not _is_frozen(default):
                self.problem(
                    default,
                    "default values must be constants or tuples of them "
                    "(a mutable default is shared between calls)",
                )

    def visit_arg(self, node: ast.arg) -> None:
        self.check_name(node, node.arg)
        self.generic_visit(node)

    # -- names and attributes ----------------------------------------------------------------

    def check_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("_") and name != "_":
            self.problem(node, f"names beginning with '_' are not allowed: {name!r}")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id.startswith("_") and node.id != "_":
            self.check_name(node, node.id)
            return
        if isinstance(node.ctx, ast.Load) and node.id not in self.bound and node.id not in BUILTIN_NAMES:
            if hasattr(builtins, node.id):
                self.problem(node, f"{node.id!r} is not available in contracts")
            else:
                self.problem(node, f"name {node.id!r} is not defined")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.problem(node, f"attributes beginning with '_' are not allowed: {attr!r}")
        elif attr in FORBIDDEN_ATTRS or attr.startswith(FORBIDDEN_ATTR_PREFIXES):
            self.problem(node, f"attribute {attr!r} is not allowed")
        if isinstance(node.ctx, ast.Del):
            self.problem(node, "`del` of attributes is not allowed")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is not None:
            self.check_name(node, node.arg)
        self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> None:
        pass  # checked by check_import

    # -- values and operators ----------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, float):
            self.problem(
                node, "float literals are not allowed (not exact); use integers in the smallest unit"
            )
        elif isinstance(value, complex):
            self.problem(node, "complex literals are not allowed")
        elif isinstance(value, int) and value.bit_length() > INT_BITS_MAX:
            self.problem(node, f"integer literals over {INT_BITS_MAX} bits are not allowed")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        # Operator nodes carry no line, so refused operators are reported here.
        if isinstance(node.op, ast.Div | ast.MatMult):
            self.problem(node, _REFUSED[type(node.op)] + " is not allowed")
        self.visit(node.left)
        self.visit(node.right)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Div | ast.MatMult):
            self.problem(node, _REFUSED[type(node.op)] + " is not allowed")
        self.check_store_target(node.target, allow_unpack=False)
        self.visit(node.target)
        self.visit(node.value)

    def visit_Compare(self, node: ast.Compare) -> None:
        # The rewrite evaluates a computed middle operand once with `:=`, which Python
        # forbids inside a comprehension's iterable.
        if self.comprehension_iters:
            for middle in node.comparators[:-1]:
                if not _is_simple(middle):
                    self.problem(
                        middle,
                        "a chained comparison inside a comprehension's iterable needs simple middle "
                        "operands (names, constants, attributes); compute the iterable first",
                    )
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Slice) and not isinstance(node.ctx, ast.Load):
            self.problem(node, "slice assignment and deletion are not allowed")
        if isinstance(node.slice, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.slice.elts):
            self.problem(node, "extended (multi-dimensional) slicing is not allowed")
        self.generic_visit(node)

    def visit_Starred(self, node: ast.Starred) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.problem(node, "starred assignment targets are not allowed")
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        spec = node.format_spec
        if spec is not None:
            parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
            if not all(isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts):
                self.problem(node, "format specs must be constant (no nested {...})")
            else:
                text = "".join(str(p.value) for p in parts if isinstance(p, ast.Constant))
                self.check_format_spec(node, text)
        self.visit(node.value)

    def check_format_spec(self, node: ast.AST, spec: str) -> None:
        match = _SPEC_RE.fullmatch(spec)
        if match is None:
            self.problem(node, f"format spec {spec!r} is not allowed (no float or locale formats)")
            return
        width, precision = match.group(1), match.group(2)
        for number in (width, precision):
            if number and int(number) > FORMAT_WIDTH_MAX:
                self.problem(node, f"format widths and precisions are limited to {FORMAT_WIDTH_MAX}")

    # -- statements ----------------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.check_store_target(target, allow_unpack=True)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name):
            self.problem(node, "annotated assignments must assign a plain name")
        self.generic_visit(node)

    def check_store_target(self, target: ast.expr, allow_unpack: bool) -> None:
        leaves = list(_targets(target)) if allow_unpack else [target]
        for leaf in leaves:
            if not isinstance(leaf, ast.Name | ast.Attribute | ast.Subscript | ast.Starred):
                self.problem(leaf, "this assignment target is not allowed")

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            for leaf in _targets(target):
                if not isinstance(leaf, ast.Name | ast.Subscript | ast.Attribute):
                    self.problem(leaf, "this `del` target is not allowed")
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self.check_loop_target(node.target)
        self.visit(node.target)
        self.visit(node.iter)
        self.frames.append("loop")
        for stmt in node.body:
            self.visit(stmt)
        self.frames.pop()
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self.frames.append("loop")
        for stmt in node.body:
            self.visit(stmt)
        self.frames.pop()
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if node.is_async:
            self.problem(node.target, "`async for` is not allowed")
        self.check_loop_target(node.target)
        self.visit(node.target)
        self.comprehension_iters += 1
        self.visit(node.iter)
        self.comprehension_iters -= 1
        for condition in node.ifs:
            self.visit(condition)

    def check_loop_target(self, target: ast.expr) -> None:
        for leaf in _targets(target):
            if not isinstance(leaf, ast.Name):
                self.problem(leaf, "loop variables must be plain names")

    def visit_Try(self, node: ast.Try) -> None:
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)
        for handler in node.handlers:
            self.visit(handler)
        self.frames.append("finally")
        for stmt in node.finalbody:
            self.visit(stmt)
        self.frames.pop()

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is None:
            self.problem(node, "bare `except:` is not allowed; catch Exception or narrower")
        if node.name is not None:
            self.check_name(node, node.name)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        self.check_exit_from_finally(node, "return", stops_at=("function",))
        self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> None:
        self.check_exit_from_finally(node, "break", stops_at=("loop", "function"))

    def visit_Continue(self, node: ast.Continue) -> None:
        self.check_exit_from_finally(node, "continue", stops_at=("loop", "function"))

    def check_exit_from_finally(self, node: ast.AST, what: str, stops_at: tuple[str, ...]) -> None:
        # Leaving a `finally` block this way would swallow OutOfSteps and CallDepthExceeded.
        for frame in reversed(self.frames):
            if frame in stops_at:
                return
            if frame == "finally":
                self.problem(node, f"`{what}` inside `finally` is not allowed")
                return


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _refused(node: ast.AST) -> str:
    reason = _REFUSED.get(type(node))
    if reason is not None:
        return reason
    return f"`{type(node).__name__}`"
