"""The metering and guarding rewrite of a checked contract's syntax tree.

Charges (each a static cost: the number of syntax nodes of the code it pays for, so the count
depends only on the source and the inputs):
  * function and lambda entry: `__cs_enter__(cost)` (also counts the frame depth) and, in a
    `finally`, `__cs_leave__()`;
  * every loop iteration, every branch (`if`/`else`, `try`/`except`/`else`/`finally`):
    `__cs_tick__(cost)` as the block's first statement;
  * every element a comprehension or generator expression draws: `__cs_tick__(cost)` as the
    first condition of each `for` clause (it returns True).
Operations whose cost or result size depends on the data are routed through guards
(`__cs_add__(a, b)`, `__cs_eq__(a, b)`, `__cs_getitem__(o, k)`, `__cs_attr__(o, "name")`, ...);
see `guards`. Annotations are dropped and imports become plain bindings.

The input must have passed `checker.check_source`; the rewrite relies on its rules (no slice
assignment, simple middle operands in chained comparisons, plain loop targets, ...).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable
from typing import Any

from consortia.execution.sandbox.guards import BINARY, COMPARE, INPLACE

HOOK_PREFIX = "__cs_"

# Operators that neither grow a value past its operands nor cost more than linear time when one
# side is a small int constant.
_CONST_SAFE = (ast.Add, ast.Sub, ast.BitAnd, ast.BitOr, ast.BitXor, ast.FloorDiv)
_CHEAP_COMPARE = (ast.Is, ast.IsNot)
_ORDERING = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def hook(name: str) -> str:
    return f"{HOOK_PREFIX}{name}__"


def binary_hook(op: ast.operator) -> str:
    return hook("b_" + type(op).__name__)


def inplace_hook(op: ast.operator) -> str:
    return hook("i_" + type(op).__name__)


def compare_hook(op: ast.cmpop) -> str:
    return hook("c_" + type(op).__name__)


def hook_names() -> dict[str, object]:
    """Namespace entries for the operator hooks the rewrite emits."""
    names: dict[str, object] = {}
    for op_name, fn in BINARY.items():
        names[hook("b_" + op_name)] = fn
    for op_name, fn in INPLACE.items():
        names[hook("i_" + op_name)] = fn
    for op_name, fn in COMPARE.items():
        names[hook("c_" + op_name)] = fn
    return names


def instrument(tree: ast.Module) -> ast.Module:
    """Rewrite a checked module in place for metered, guarded execution and return it."""
    _Rewriter().visit(tree)
    ast.fix_missing_locations(tree)
    return tree


# -- static costs ---------------------------------------------------------------------------------


def _expr_cost(node: ast.AST) -> int:
    """Syntax nodes of an expression, not counting code charged elsewhere (lambda and
    comprehension bodies) nor the text pieces of f-strings (their split varies by version)."""
    if isinstance(node, ast.Lambda):
        return 1 + _children_cost(node.args)
    if isinstance(node, ast.ListComp | ast.DictComp | ast.GeneratorExp):
        return 1 + _expr_cost(node.generators[0].iter)
    if isinstance(node, ast.JoinedStr):
        return 1 + sum(_expr_cost(v.value) for v in node.values if isinstance(v, ast.FormattedValue))
    own = 1 if isinstance(node, ast.expr) else 0
    return own + _children_cost(node)


def _children_cost(node: ast.AST) -> int:
    return sum(_expr_cost(child) for child in ast.iter_child_nodes(node) if not isinstance(child, ast.stmt))


def _stmt_cost(stmt: ast.stmt) -> int:
    """A statement's own nodes; its nested blocks charge for themselves."""
    if isinstance(stmt, ast.If | ast.While):
        return 1 + _expr_cost(stmt.test)
    if isinstance(stmt, ast.For):
        return 1 + _expr_cost(stmt.iter)
    if isinstance(stmt, ast.Try):
        return 1
    if isinstance(stmt, ast.FunctionDef):
        return 1 + sum(_expr_cost(d) for d in stmt.decorator_list) + _children_cost(stmt.args)
    if isinstance(stmt, ast.ClassDef):
        return 1 + sum(_expr_cost(b) for b in stmt.bases)
    return 1 + _children_cost(stmt)


def _block_cost(stmts: Iterable[ast.stmt]) -> int:
    return sum(_stmt_cost(s) for s in stmts)


def _comprehension_cost(node: ast.ListComp | ast.DictComp | ast.GeneratorExp) -> int:
    """What one drawn element may evaluate: the element, every condition and the inner iterables."""
    parts: list[ast.AST] = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    for i, gen in enumerate(node.generators):
        parts.append(gen.target)
        parts.extend(gen.ifs)
        if i:
            parts.append(gen.iter)
    return 1 + sum(_expr_cost(p) for p in parts)


# -- node builders --------------------------------------------------------------------------------


def _name(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Load())


def _call(fn: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_name(fn), args=list(args), keywords=[])


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


def _tick(cost: int) -> ast.stmt:
    return ast.Expr(value=_call(hook("tick"), _const(cost)))


def _is_simple(node: ast.expr) -> bool:
    """Side-effect-free and cheap to evaluate twice: a name, a constant, or an attribute of one."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    return isinstance(node, ast.Attribute) and _is_simple(node.value)


def _small_int(node: ast.expr) -> bool:
    if not isinstance(node, ast.Constant):
        return False
    value = node.value
    return isinstance(value, int) and value.bit_length() <= 64


def _scalar_const(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int | str | bytes | type(None))


def _const_collection(node: ast.expr) -> bool:
    return isinstance(node, ast.Tuple | ast.List) and all(_scalar_const(e) for e in node.elts)


class _Rewriter(ast.NodeTransformer):
    def __init__(self) -> None:
        self.temps = 0

    def temp(self) -> str:
        self.temps += 1
        return hook(f"t{self.temps}")

    def block(self, stmts: list[ast.stmt], extra_cost: int = 0) -> list[ast.stmt]:
        """Rewrite a block and prepend its charge."""
        cost = _block_cost(stmts) + extra_cost
        out: list[ast.stmt] = []
        for stmt in stmts:
            result = self.visit(stmt)
            if isinstance(result, list):
                out.extend(result)
            elif result is not None:
                out.append(result)
        if cost:
            out.insert(0, _tick(cost))
        return out or [ast.Pass()]

    # -- module, functions, classes ----------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> ast.Module:
        body: list[ast.stmt] = []
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom):
                body.extend(self.import_bindings(stmt))
                continue
            result = self.visit(stmt)
            body.extend(result if isinstance(result, list) else [result])
        node.body = body or [ast.Pass()]
        return node

    def import_bindings(self, node: ast.ImportFrom) -> list[ast.stmt]:
        # The names are predefined; `import X as Y` binds Y to the real X.
        out: list[ast.stmt] = []
        for alias in node.names:
            if alias.asname is not None:
                target = ast.Name(id=alias.asname, ctx=ast.Store())
                out.append(
                    ast.copy_location(
                        ast.Assign(targets=[target], value=_name(hook("import_" + alias.name))), node
                    )
                )
        return out

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        body: list[ast.stmt] = []
        for stmt in node.body:
            result = self.visit(stmt)
            body.extend(result if isinstance(result, list) else [result])
        node.body = body or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.strip_annotations(node.args)
        node.returns = None
        cost = 1 + _block_cost(node.body)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        body = self.block(node.body)
        if isinstance(body[0], ast.Expr) and _is_tick(body[0]):
            body = body[1:]  # the entry charge covers the top-level block
        guarded = ast.Try(
            body=body or [ast.Pass()],
            handlers=[],
            orelse=[],
            finalbody=[ast.Expr(value=_call(hook("leave")))],
        )
        node.body = [ast.Expr(value=_call(hook("enter"), _const(cost))), guarded]
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        self.strip_annotations(node.args)
        cost = 1 + _expr_cost(node.body)
        node.args = self.visit(node.args)
        node.body = self.visit(node.body)
        return _call(hook("lambda"), node, _const(cost))

    @staticmethod
    def strip_annotations(args: ast.arguments) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                arg.annotation = None

    # -- control flow ---------------------------------------------------------------------------

    def visit_If(self, node: ast.If) -> ast.If:
        node.test = self.visit(node.test)
        node.body = self.block(node.body)
        if node.orelse:
            node.orelse = self.block(node.orelse)
        return node

    def visit_For(self, node: ast.For) -> ast.For:
        node.iter = self.visit(node.iter)
        node.body = self.block(node.body, extra_cost=_expr_cost(node.target))
        if node.orelse:
            node.orelse = self.block(node.orelse)
        return node

    def visit_While(self, node: ast.While) -> ast.While:
        test_cost = _expr_cost(node.test)
        node.test = self.visit(node.test)
        node.body = self.block(node.body, extra_cost=test_cost)
        if node.orelse:
            node.orelse = self.block(node.orelse)
        return node

    def visit_Try(self, node: ast.Try) -> ast.Try:
        node.body = self.block(node.body)
        for handler in node.handlers:
            type_cost = _expr_cost(handler.type) if handler.type is not None else 0
            if handler.type is not None:
                handler.type = self.visit(handler.type)
            body = self.block(handler.body, extra_cost=type_cost)
            handler.body = [ast.Expr(value=_call(hook("caught"))), *body]
        if node.orelse:
            node.orelse = self.block(node.orelse)
        if node.finalbody:
            node.finalbody = self.block(node.finalbody)
        return node

    def comprehension(self, node: ast.ListComp | ast.DictComp | ast.GeneratorExp) -> ast.expr:
        cost = _comprehension_cost(node)
        self.generic_visit(node)
        if isinstance(node, ast.DictComp):
            node.key = _call(hook("key"), node.key)
        for gen in node.generators:
            gen.ifs.insert(0, _call(hook("tick"), _const(cost)))
        return node

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        return self.comprehension(node)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.expr:
        return self.comprehension(node)

    def visit_DictComp(self, node: ast.DictComp) -> ast.expr:
        return self.comprehension(node)

    # -- assignment -----------------------------------------------------------------------------

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt | list[ast.stmt]:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        assign = ast.Assign(targets=[node.target], value=node.value)
        return self.visit_Assign(ast.copy_location(assign, node))

    def visit_Assign(self, node: ast.Assign) -> ast.stmt | list[ast.stmt]:
        node.value = self.visit(node.value)
        if all(isinstance(t, ast.Name) for t in node.targets):
            return node
        # Evaluate the value once into a temporary, then store into each target left to right.
        value_name = self.temp()
        out: list[ast.stmt] = [
            ast.Assign(targets=[ast.Name(id=value_name, ctx=ast.Store())], value=node.value)
        ]
        for target in node.targets:
            out.extend(self.store(target, _name(value_name)))
        return [ast.copy_location(s, node) for s in out]

    def store(self, target: ast.expr, value: ast.expr) -> list[ast.stmt]:
        if isinstance(target, ast.Name):
            return [ast.Assign(targets=[target], value=value)]
        if isinstance(target, ast.Attribute):
            obj = self.visit(target.value)
            return [ast.Expr(value=_call(hook("setattr"), obj, _const(target.attr), value))]
        if isinstance(target, ast.Subscript):
            obj = self.visit(target.value)
            index = self.visit(target.slice)
            return [ast.Expr(value=_call(hook("setitem"), obj, index, value))]
        if isinstance(target, ast.Tuple | ast.List):
            # Unpack into temporaries with Python's own unpacking rules, then store each.
            names = [self.temp() for _ in target.elts]
            unpack = ast.Tuple(elts=[ast.Name(id=n, ctx=ast.Store()) for n in names], ctx=ast.Store())
            out: list[ast.stmt] = [ast.Assign(targets=[unpack], value=value)]
            for elt, n in zip(target.elts, names, strict=True):
                out.extend(self.store(elt, _name(n)))
            return out
        raise AssertionError(f"unchecked assignment target {type(target).__name__}")

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt | list[ast.stmt]:
        node.value = self.visit(node.value)
        op = node.op
        needs_guard = type(op).__name__ in INPLACE and not (
            isinstance(op, _CONST_SAFE) and _small_int(node.value)
        )
        target = node.target
        if isinstance(target, ast.Name):
            if not needs_guard:
                return node
            value = ast.Call(func=_name(inplace_hook(op)), args=[_name(target.id), node.value], keywords=[])
            return ast.copy_location(
                ast.Assign(targets=[ast.Name(id=target.id, ctx=ast.Store())], value=value), node
            )
        out: list[ast.stmt] = []
        obj_name = self.temp()
        out.append(
            ast.Assign(targets=[ast.Name(id=obj_name, ctx=ast.Store())], value=self.visit(target.value))
        )
        if isinstance(target, ast.Attribute):
            current: ast.expr = _call(hook("attr"), _name(obj_name), _const(target.attr))
        else:
            assert isinstance(target, ast.Subscript)
            key_name = self.temp()
            out.append(
                ast.Assign(targets=[ast.Name(id=key_name, ctx=ast.Store())], value=self.visit(target.slice))
            )
            current = _call(hook("getitem"), _name(obj_name), _name(key_name))
        if needs_guard:
            new_value: ast.expr = _call(inplace_hook(op), current, node.value)
        else:
            new_value = ast.BinOp(left=current, op=op, right=node.value)
        if isinstance(target, ast.Attribute):
            out.append(
                ast.Expr(value=_call(hook("setattr"), _name(obj_name), _const(target.attr), new_value))
            )
        else:
            out.append(ast.Expr(value=_call(hook("setitem"), _name(obj_name), _name(key_name), new_value)))
        return [ast.copy_location(s, node) for s in out]

    def visit_Delete(self, node: ast.Delete) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for target in node.targets:
            out.extend(self.delete(target))
        return [ast.copy_location(s, node) for s in out]

    def delete(self, target: ast.expr) -> list[ast.stmt]:
        if isinstance(target, ast.Name):
            return [ast.Delete(targets=[target])]
        if isinstance(target, ast.Subscript):
            return [
                ast.Expr(value=_call(hook("delitem"), self.visit(target.value), self.visit(target.slice)))
            ]
        if isinstance(target, ast.Tuple | ast.List):
            return [s for elt in target.elts for s in self.delete(elt)]
        raise AssertionError(f"unchecked del target {type(target).__name__}")

    # -- expressions ----------------------------------------------------------------------------

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        op_name = type(node.op).__name__
        if op_name not in BINARY:
            return node  # >> never grows a value and costs linear time
        left, right = node.left, node.right
        if isinstance(node.op, _CONST_SAFE) and (_small_int(left) or _small_int(right)):
            return node
        if isinstance(node.op, ast.Mod) and _small_int(left):
            return node
        return ast.copy_location(_call(binary_hook(node.op), left, right), node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        operand = node.operand
        # Fold -1 and friends (as CPython's compiler would) so they count as constants here.
        if isinstance(operand, ast.Constant) and type(operand.value) is int:
            if isinstance(node.op, ast.USub):
                return ast.copy_location(_const(-operand.value), node)
            if isinstance(node.op, ast.UAdd):
                return ast.copy_location(_const(+operand.value), node)
            if isinstance(node.op, ast.Invert):
                return ast.copy_location(_const(~operand.value), node)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        simple = [_is_simple(c) for c in node.comparators]
        self.generic_visit(node)
        if all(self.cheap_compare(op, left, right) for op, left, right in self.links(node)):
            return node
        # A chain a < m < b becomes cmp(a, m) and cmp(m, b); a middle operand that is not
        # simple is evaluated once, into a temporary.
        operands: list[ast.expr] = [node.left]
        reuse: list[ast.expr] = [node.left]
        for i, comparator in enumerate(node.comparators):
            last = i == len(node.comparators) - 1
            if last or simple[i]:
                operands.append(comparator)
                reuse.append(comparator if last else copy.deepcopy(comparator))
            else:
                name = self.temp()
                operands.append(ast.NamedExpr(target=ast.Name(id=name, ctx=ast.Store()), value=comparator))
                reuse.append(_name(name))
        links: list[ast.expr] = []
        for i, op in enumerate(node.ops):
            left = operands[0] if i == 0 else reuse[i]
            right = operands[i + 1]
            if self.cheap_compare(op, left, right):
                links.append(ast.Compare(left=left, ops=[op], comparators=[right]))
            else:
                links.append(_call(compare_hook(op), left, right))
        if len(links) == 1:
            return ast.copy_location(links[0], node)
        return ast.copy_location(ast.BoolOp(op=ast.And(), values=links), node)

    @staticmethod
    def links(node: ast.Compare) -> Iterable[tuple[ast.cmpop, ast.expr, ast.expr]]:
        operands = [node.left, *node.comparators]
        return zip(node.ops, operands, operands[1:], strict=False)

    @staticmethod
    def cheap_compare(op: ast.cmpop, left: ast.expr, right: ast.expr) -> bool:
        """Comparisons whose cost is bounded by the source: identity, or against a constant."""
        if isinstance(op, _CHEAP_COMPARE):
            return True
        if isinstance(op, _ORDERING):
            return _scalar_const(left) or _scalar_const(right)
        return _scalar_const(right) or _const_collection(right)  # in / not in

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        index = node.slice
        if isinstance(index, ast.Slice):
            bounds = [b if b is not None else _const(None) for b in (index.lower, index.upper, index.step)]
            return ast.copy_location(_call(hook("slice"), node.value, *bounds), node)
        if isinstance(index, ast.Constant):
            return node
        return ast.copy_location(_call(hook("getitem"), node.value, index), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        value = self.visit(node.value)
        return ast.copy_location(_call(hook("attr"), value, _const(node.attr)), node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        args = [self.spread_arg(a) for a in node.args]
        keywords = [self.spread_keyword(k) for k in node.keywords]
        if isinstance(func, ast.Attribute):
            obj = self.visit(func.value)
            call = ast.Call(
                func=_name(hook("callm")), args=[obj, _const(func.attr), *args], keywords=keywords
            )
            return ast.copy_location(call, node)
        node.func = self.visit(func)
        node.args = args
        node.keywords = keywords
        return node

    def spread_arg(self, arg: ast.expr) -> ast.expr:
        if isinstance(arg, ast.Starred):
            return ast.Starred(value=_call(hook("spread"), self.visit(arg.value)), ctx=ast.Load())
        return self.visit(arg)  # type: ignore[no-any-return]

    def spread_keyword(self, keyword: ast.keyword) -> ast.keyword:
        value = self.visit(keyword.value)
        if keyword.arg is None:
            value = _call(hook("spread_kw"), value)
        return ast.keyword(arg=keyword.arg, value=value)

    def visit_List(self, node: ast.List) -> ast.expr:
        node.elts = [self.spread_arg(e) for e in node.elts]
        return node

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        node.elts = [self.spread_arg(e) for e in node.elts]
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        keys: list[ast.expr | None] = []
        values: list[ast.expr] = []
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:
                keys.append(None)
                values.append(_call(hook("spread_kw"), self.visit(v)))
            else:
                visited = self.visit(k)
                keys.append(visited if isinstance(visited, ast.Constant) else _call(hook("key"), visited))
                values.append(self.visit(v))
        node.keys = keys
        node.values = values
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.expr:
        spec = ""
        if isinstance(node.format_spec, ast.JoinedStr):
            spec = "".join(str(v.value) for v in node.format_spec.values if isinstance(v, ast.Constant))
        value = _call(hook("fmt"), self.visit(node.value), _const(node.conversion), _const(spec))
        return ast.copy_location(ast.FormattedValue(value=value, conversion=-1, format_spec=None), node)


def _is_tick(stmt: ast.Expr) -> bool:
    call = stmt.value
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == hook("tick")
