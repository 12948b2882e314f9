"""Compiling contract source into a callable contract, and invoking its methods.

compile_contract: check (checker) -> rewrite (rewrite) -> compile -> run the module body once,
metered, in a fresh namespace whose builtins are `safe_builtins` and whose hooks are the
meter and the guards. The module body may only define things (the checker allows nothing
else at module level), so a compiled contract holds no state between calls: every call gets
a fresh instance of the contract class with `ctx` set.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from consortia.crypto import sha256
from consortia.execution.contract import Contract, ContractError, public_methods
from consortia.execution.sandbox import guards
from consortia.execution.sandbox.checker import check_source
from consortia.execution.sandbox.errors import (
    BadArguments,
    ContractRuntimeError,
    SandboxError,
    SandboxViolation,
    UnknownMethod,
)
from consortia.execution.sandbox.limits import STEPS_MAX_DEFAULT
from consortia.execution.sandbox.meter import (
    ACTIVE,
    CallDepthExceeded,
    Meter,
    OutOfSteps,
    activate,
    enter,
    leave,
    tick,
)
from consortia.execution.sandbox.rewrite import hook, hook_names, instrument
from consortia.execution.sandbox.safe_builtins import CONTRACT_MODULE_NAME, SAFE_BUILTINS, m_view
from consortia.execution.sandbox.values import describe

FILENAME = "<contract>"
MODULE_NAME = CONTRACT_MODULE_NAME
RESERVED_METHODS = frozenset({"ctx"})


def _lambda(fn: Callable[..., Any], cost: int) -> Callable[..., Any]:
    """A lambda's entry charge and frame count (a lambda has no statements to put them in)."""

    def metered(*args: Any, **kwargs: Any) -> Any:
        meter = ACTIVE.meter
        meter.enter(cost)
        try:
            return fn(*args, **kwargs)
        finally:
            meter.depth -= 1

    return metered


HOOKS: dict[str, Any] = {
    hook("tick"): tick,
    hook("enter"): enter,
    hook("leave"): leave,
    hook("lambda"): _lambda,
    hook("caught"): guards.caught,
    hook("attr"): guards.attr,
    hook("callm"): guards.callm,
    hook("setattr"): guards.setattr_,
    hook("getitem"): guards.getitem,
    hook("setitem"): guards.setitem,
    hook("delitem"): guards.delitem,
    hook("slice"): guards.slice_,
    hook("key"): guards.key,
    hook("spread"): guards.spread,
    hook("spread_kw"): guards.spread_kw,
    hook("fmt"): guards.fmt,
    hook("import_Contract"): Contract,
    hook("import_ContractError"): ContractError,
    hook("import_view"): m_view,
    **hook_names(),
}


class CompiledContract:
    """A checked, instrumented contract, ready to invoke.

    `name` is its Contract subclass' name, `source_hash` the sha256 of the UTF-8 source,
    `methods` maps each public method to whether it is a view (sorted by name).
    """

    def __init__(self, source: str, cls: type, steps_max_default: int) -> None:
        self.name = cls.__name__
        self.source_hash = sha256(source.encode())
        self.cls = cls
        self.methods: dict[str, bool] = public_methods(cls)
        self.steps_max_default = steps_max_default
        self._functions: dict[str, Callable[..., Any]] = {name: getattr(cls, name) for name in self.methods}
        self._arity = {name: _arity(fn) for name, fn in self._functions.items()}

    def __repr__(self) -> str:
        return f"CompiledContract({self.name}, {self.source_hash.hex()[:16]})"

    def invoke(self, ctx: Any, method: str, args: list[Any], meter: Meter) -> Any:
        """Call `method(*args)` on a fresh instance whose `ctx` is `ctx`, charging `meter`.

        Raises UnknownMethod, BadArguments (the arguments don't fit the parameters),
        ContractRuntimeError (contract code raised anything but ContractError; the message
        is deterministic), and lets ContractError, OutOfSteps and CallDepthExceeded through.
        MemoryError and RecursionError also pass through: they depend on the host, so they
        must abort the block rather than become a receipt.
        """
        fn = self._functions.get(method)
        if fn is None:
            raise UnknownMethod(f"{self.name}.{method}")
        if not isinstance(args, list | tuple):
            raise BadArguments(f"{self.name}.{method}: arguments must be a list")
        fewest, most = self._arity[method]
        if not fewest <= len(args) <= most:
            expected = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise BadArguments(f"{self.name}.{method} takes {expected} arguments, got {len(args)}")
        instance = self.cls()
        instance.ctx = ctx
        previous = activate(meter)
        try:
            result = fn(instance, *args)
        except (ContractError, SandboxError, MemoryError, RecursionError):
            raise
        except Exception as exc:
            raise ContractRuntimeError(describe(exc)) from None
        finally:
            activate(previous)
        if meter.exhausted:
            # Only reachable if contract code swallowed OutOfSteps; the checker forbids the
            # ways to do that, this keeps the guarantee if a new one appears.
            raise OutOfSteps(meter.steps_max)
        return result


def compile_contract(source: str, steps_max_default: int = STEPS_MAX_DEFAULT) -> CompiledContract:
    """Check, instrument and load contract source.

    Raises SandboxViolation (with "line N: ..." problems) when the source breaks a sandbox
    rule, fails to compile, fails or runs out of steps while defining its names, or does not
    define exactly one Contract subclass.
    """
    tree = check_source(source)
    class_lines = {stmt.name: stmt.lineno for stmt in tree.body if hasattr(stmt, "name")}
    instrument(tree)
    try:
        code = compile(tree, FILENAME, "exec", dont_inherit=True, optimize=0)
    except SyntaxError as exc:
        raise SandboxViolation([f"line {exc.lineno or 1}: syntax error: {exc.msg}"]) from None
    namespace: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, "__name__": MODULE_NAME, **HOOKS}
    previous = activate(Meter(steps_max_default))
    try:
        exec(code, namespace)
    except (OutOfSteps, CallDepthExceeded) as exc:
        raise SandboxViolation([f"line 1: module code: {type(exc).__name__}: {exc}"]) from None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        line = _contract_line(exc.__traceback__)
        raise SandboxViolation([f"line {line}: module code failed: {describe(exc)}"]) from None
    finally:
        activate(previous)
    found: list[type] = []
    for value in namespace.values():
        if (
            isinstance(value, type)
            and value is not Contract
            and issubclass(value, Contract)
            and value not in found
        ):
            found.append(value)
    if not found:
        raise SandboxViolation(["line 1: the source defines no Contract subclass"])
    if len(found) > 1:
        names = ", ".join(c.__name__ for c in found)
        line = class_lines.get(found[1].__name__, 1)
        raise SandboxViolation(
            [f"line {line}: a source defines one Contract subclass, not several ({names})"]
        )
    cls = found[0]
    reserved = sorted(RESERVED_METHODS & set(public_methods(cls)))
    if reserved:
        raise SandboxViolation(
            [f"line {class_lines.get(cls.__name__, 1)}: a method may not be named {reserved[0]!r}"]
        )
    return CompiledContract(source, cls, steps_max_default)


def _arity(fn: Callable[..., Any]) -> tuple[int, int]:
    """How many positional arguments (after self) a method accepts: (fewest, most).

    A method with a keyword-only parameter that has no default can never be called from a
    transaction, which passes positional arguments only: (1, 0).
    """
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        return (1, 0) if not params else (0, sys.maxsize)
    params = params[1:]  # self
    fewest = most = 0
    for param in params:
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            most += 1
            if param.default is param.empty:
                fewest = most
        elif param.kind is param.VAR_POSITIONAL:
            most = sys.maxsize
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            return 1, 0
    return fewest, most


def _contract_line(tb: TracebackType | None) -> int:
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
