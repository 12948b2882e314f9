"""Sizing, walking and rendering contract values, charging in proportion to the work.

Comparisons, hashing and sorting run in C over whole nested values, so before the guards let
CPython do them they `weigh` one operand: an iterative walk that charges one step per element
it visits and refuses nesting deeper than NEST_MAX (which also keeps CPython's own recursion,
whose limit differs between builds, far away). `render` is Python's repr for plain data,
charged and bounded, with no memory addresses, so `str()` and f-strings are deterministic.
"""

from __future__ import annotations

import re
from types import FunctionType, MethodType
from typing import Any

from consortia.execution.sandbox.errors import ValueTooLarge
from consortia.execution.sandbox.limits import (
    INT_BITS_MAX,
    ITEMS_MAX,
    MESSAGE_CHARS_MAX,
    NEST_MAX,
    SIZE_SHIFT,
)
from consortia.execution.sandbox.meter import ACTIVE, charge

DictKeys: type = type({}.keys())
DictValues: type = type({}.values())
DictItems: type = type({}.items())
DICT_VIEWS = frozenset({DictKeys, DictValues, DictItems})
CONTAINERS = frozenset({list, tuple, dict, DictKeys, DictValues, DictItems})
STRINGS = frozenset({str, bytes})
SEQUENCES = frozenset({str, bytes, list, tuple})
# Values whose length len() reports without iterating, so a charge can precede the work.
SIZED = frozenset({str, bytes, list, tuple, dict, range, DictKeys, DictValues, DictItems})
_FLAT = frozenset({int, bool, type(None)})

# ints up to this many bits convert to decimal within any CPython int_max_str_digits setting
DECIMAL_BITS_SAFE = 1900
_DECIMAL_CHUNK = 10**500
_ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")


def check_items(n: int, what: str = "value") -> None:
    """Raises ValueTooLarge if a value of n elements is over ITEMS_MAX."""
    if n > ITEMS_MAX:
        raise ValueTooLarge(f"{what} of {n} elements exceeds the limit of {ITEMS_MAX}")


def check_int(value: int) -> int:
    """Raises ValueTooLarge for an int over INT_BITS_MAX bits."""
    if value.bit_length() > INT_BITS_MAX:
        raise ValueTooLarge(f"integer of {value.bit_length()} bits exceeds the limit of {INT_BITS_MAX}")
    return value


def charge_bigint(a: int, b: int) -> None:
    """Charge for a quadratic operation (multiply, divide, decimal conversion) on big ints."""
    words_a = a.bit_length() >> 6
    words_b = b.bit_length() >> 6
    if words_a and words_b:
        charge((words_a * words_b) >> SIZE_SHIFT)


def charge_items(n: int) -> None:
    """Charge for copying or scanning n elements at C speed."""
    if n >> SIZE_SHIFT:
        charge(n >> SIZE_SHIFT)


def check_result(value: Any) -> Any:
    """Check the size of a freshly produced value and charge for producing it."""
    t = type(value)
    if t is int:
        check_int(value)
    elif t in SEQUENCES or t is dict:
        n = len(value)
        check_items(n)
        charge_items(n)
    return value


def weigh(value: Any) -> int:
    """The expanded size of `value` (elements at every level, strings by length).

    Charges one step per element visited. Raises ValueTooLarge for nesting deeper than
    NEST_MAX (cycles included) and OutOfSteps when the walk outruns the budget.
    """
    t = type(value)
    if t is str or t is bytes:
        return 1 + (len(value) >> SIZE_SHIFT)
    if t not in CONTAINERS:
        return 1
    meter = ACTIVE.meter
    total = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > NEST_MAX:
            raise ValueTooLarge(f"value nested deeper than {NEST_MAX} levels")
        tv = type(v)
        if tv is dict or tv is DictItems:
            mapping: Any = v if tv is dict else v.mapping
            n = 2 * len(mapping)
            parts: list[Any] = [mapping.keys(), mapping.values()]
        else:
            n = len(v)
            parts = [v]
        meter.charge(n)  # before walking, so a walk over shared structure stops early
        total += n
        for part in parts:
            if set(map(type, part)) <= _FLAT:
                continue
            for element in part:
                te = type(element)
                if te in CONTAINERS:
                    stack.append((element, depth + 1))
                elif te is str or te is bytes:
                    total += len(element) >> SIZE_SHIFT
    return total


def max_weight(items: list[Any]) -> int:
    """The largest weight among items (1 if all are ints, bools or None)."""
    if set(map(type, items)) <= _FLAT:
        return 1
    charge(len(items))
    return max(map(weigh, items), default=1)


# -- int <-> decimal text without the per-process int_max_str_digits limit ----------------------


def int_to_decimal(n: int) -> str:
    if n.bit_length() <= DECIMAL_BITS_SAFE:
        return str(n)
    sign = "-" if n < 0 else ""
    n = -n if n < 0 else n
    chunks: list[int] = []
    while n:
        n, rest = divmod(n, _DECIMAL_CHUNK)
        chunks.append(rest)
    head = str(chunks.pop())
    return sign + head + "".join(str(chunk).zfill(500) for chunk in reversed(chunks))


# -- rendering ----------------------------------------------------------------------------------


class _Truncated(Exception):
    pass


class _Out:
    __slots__ = ("budget", "charged", "parts", "size")

    def __init__(self, budget: int, charged: bool) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.budget = budget
        self.charged = charged

    def add(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.budget:
            if self.charged:
                raise ValueTooLarge(f"text of more than {self.budget} characters")
            raise _Truncated
        self.parts.append(text)

    def element(self) -> None:
        if self.charged:
            charge(1)


def render(value: Any, *, charged: bool = True, budget: int = ITEMS_MAX) -> str:
    """Python's repr for plain data; other objects as <Type object>, never with an address.

    Charged mode charges one step per element and per 16 characters and raises ValueTooLarge
    past `budget` characters or NEST_MAX levels; uncharged mode (for error messages) stops at
    `budget` characters and ends with "...".
    """
    out = _Out(budget, charged)
    try:
        _render(value, out, 1)
    except _Truncated:
        out.parts.append("...")
    if charged:
        charge_items(out.size)
    return "".join(out.parts)


def _render(v: Any, out: _Out, depth: int) -> None:
    if depth > NEST_MAX:
        if out.charged:
            raise ValueTooLarge(f"value nested deeper than {NEST_MAX} levels")
        raise _Truncated
    t = type(v)
    if t is str or t is bytes:
        out.add(repr(v if len(v) <= out.budget else v[: out.budget]))
    elif t is int:
        if out.charged:
            charge_bigint(v, v)
        out.add(int_to_decimal(v))
    elif t is bool or v is None or t is range:
        out.add(repr(v))
    elif (t is list or t is tuple or t is dict) and _flat_repr(v, t, out):
        return
    elif t is list or t is tuple:
        out.add("[" if t is list else "(")
        _render_items(v, out, depth)
        out.add("]" if t is list else ("," if len(v) == 1 else "") + ")")
    elif t is dict:
        out.add("{")
        for i, (key, value) in enumerate(v.items()):
            out.element()
            if i:
                out.add(", ")
            _render(key, out, depth + 1)
            out.add(": ")
            _render(value, out, depth + 1)
        out.add("}")
    elif t in DICT_VIEWS:
        out.add(t.__name__ + "([")
        _render_items(v, out, depth)
        out.add("])")
    elif isinstance(v, BaseException):
        out.add(t.__name__ + "(")
        _render_items(v.args, out, depth)
        out.add(")")
    elif isinstance(v, type):
        out.add(f"<class {v.__name__!r}>")
    elif t is FunctionType:
        out.add(f"<function {v.__qualname__}>")
    elif t is MethodType:
        out.add(f"<bound method {v.__func__.__qualname__}>")
    else:
        out.add(f"<{t.__name__} object>")


_REPR_SAFE = frozenset({str, bytes, bool, type(None)})
_SMALL_INT = 1 << 63  # charge_bigint charges nothing below this


def _flat_repr(v: Any, t: type, out: _Out) -> bool:
    """CPython's repr for a container of strings, bytes, bools and None (the common case, at C
    speed; the same text _render would build). Charged as _render would charge."""
    values: Any = list(v.keys()) + list(v.values()) if t is dict else v
    kinds = set(map(type, values))
    if not kinds <= _REPR_SAFE | {int}:
        return False
    if int in kinds and out.charged:
        ints = [x for x in values if type(x) is int]
        if max(ints) >= _SMALL_INT or min(ints) < -_SMALL_INT:
            return False  # _render charges big ints' decimal conversion
    if out.charged:
        charge(len(v))
    try:
        text = repr(v)
    except ValueError:  # an int over this process's int_max_str_digits
        return False
    out.add(text)
    return True


def _render_items(items: Any, out: _Out, depth: int) -> None:
    for i, item in enumerate(items):
        out.element()
        if i:
            out.add(", ")
        _render(item, out, depth + 1)


def to_str(value: Any) -> str:
    """What `str(value)` means in a contract: Python's result for plain data, charged."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if t is int:
        charge_bigint(value, value)
        return int_to_decimal(value)
    if isinstance(value, BaseException):
        return exception_text(value, charged=True)
    return render(value)


def exception_text(exc: BaseException, *, charged: bool, budget: int = ITEMS_MAX) -> str:
    """str(exc) as Python gives it, built from the arguments so it is bounded and address-free."""
    args = exc.args
    # ContractError and the few builtins with their own __str__ (UnicodeError, KeyError): safe
    # when every argument is a small scalar.
    own_str = isinstance(exc, Exception) and type(exc).__str__ is not BaseException.__str__
    if own_str and all(_small_scalar(a) for a in args):
        return _ADDRESS_RE.sub("", str(exc))
    if not args:
        return ""
    if len(args) == 1 and not isinstance(exc, KeyError):
        arg = args[0]
        if type(arg) is str:
            return arg if len(arg) <= budget else arg[:budget] + "..."
        return render(arg, charged=charged, budget=budget)
    return render(args[0] if len(args) == 1 else args, charged=charged, budget=budget)


def _small_scalar(value: Any) -> bool:
    t = type(value)
    if t is int:
        return bool(value.bit_length() <= DECIMAL_BITS_SAFE)
    if t is str or t is bytes:
        return bool(len(value) <= MESSAGE_CHARS_MAX)
    return t is bool or value is None


def describe(exc: BaseException) -> str:
    """A deterministic one-line description: "TypeName: message", bounded, no addresses."""
    text = exception_text(exc, charged=False, budget=MESSAGE_CHARS_MAX)
    text = _ADDRESS_RE.sub("", text)
    if len(text) > MESSAGE_CHARS_MAX:
        text = text[: MESSAGE_CHARS_MAX - 3] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
