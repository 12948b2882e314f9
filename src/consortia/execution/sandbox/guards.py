"""Run-time guards the rewriter routes contract operations through.

Arithmetic refuses values over the size limits before building them; comparisons, `in`,
subscripts and spreads charge for the elements CPython will touch; attribute access goes
through an allowlist (builtin value types by method, contract-defined objects freely, anything
else - the call context, the caller - by a fixed set of names), and attributes may be set only
on instances of contract-defined classes, so nothing shared outlives a call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from consortia.execution.contract import ContractError
from consortia.execution.sandbox.errors import ValueTooLarge
from consortia.execution.sandbox.limits import INT_BITS_MAX
from consortia.execution.sandbox.meter import charge
from consortia.execution.sandbox.values import (
    CONTAINERS,
    DECIMAL_BITS_SAFE,
    DICT_VIEWS,
    SEQUENCES,
    SIZED,
    STRINGS,
    DictItems,
    DictKeys,
    DictValues,
    charge_bigint,
    charge_items,
    check_int,
    check_items,
    check_result,
    render,
    to_str,
    weigh,
)

# Set on every class contract code creates; contract code can't name it (it begins with "_").
MARK = "_consortia_sandbox_class"
INTLIKE = frozenset({int, bool})

# What contract code may read on objects it did not create and that are not plain values: the
# call context and the caller (see consortia.execution.context), and `args` of exceptions.
FOREIGN_ATTRS = frozenset(
    {
        "get", "put", "delete", "range", "prefix", "composite_key", "split_composite_key",
        "emit", "call", "caller", "height", "timestamp_ms", "tx_id", "channel", "contract",
        "read_only", "org", "role", "subject", "cert_hash", "attributes",
    }
)  # fmt: skip

Guard = Callable[..., Any]


def _too_big_int() -> ValueTooLarge:
    return ValueTooLarge(f"integer result over {INT_BITS_MAX} bits")


def _no_views(a: Any, b: Any) -> None:
    if type(a) in DICT_VIEWS or type(b) in DICT_VIEWS:
        raise ContractError("set operations on dict views are not supported (sets have no fixed order)")


# -- arithmetic -----------------------------------------------------------------------------------


def add(a: Any, b: Any) -> Any:
    return check_result(a + b)


def sub(a: Any, b: Any) -> Any:
    _no_views(a, b)
    return check_result(a - b)


def mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta in INTLIKE and tb in INTLIKE:
        if a.bit_length() + b.bit_length() > INT_BITS_MAX + 1:
            raise _too_big_int()
        charge_bigint(a, b)
        return check_int(a * b)
    if ta in SEQUENCES and tb in INTLIKE:
        check_items(len(a) * max(b, 0))
    elif tb in SEQUENCES and ta in INTLIKE:
        check_items(len(b) * max(a, 0))
    return check_result(a * b)


def pow_(a: Any, b: Any) -> Any:
    if type(a) in INTLIKE and type(b) in INTLIKE:
        if b < 0:
            raise ContractError("negative exponents yield floats; they are not allowed")
        if b > 1 and a not in (0, 1, -1):
            if b > INT_BITS_MAX or (a.bit_length() - 1) * b > INT_BITS_MAX:
                raise _too_big_int()
            result = check_int(a**b)
            charge_bigint(result, result)
            return result
    return a**b


def lshift(a: Any, b: Any) -> Any:
    growing = type(a) in INTLIKE and type(b) in INTLIKE and a and b > 0
    if growing and (b > INT_BITS_MAX or a.bit_length() + b > INT_BITS_MAX):
        raise _too_big_int()
    return a << b


def mod(a: Any, b: Any) -> Any:
    if type(a) in STRINGS:
        raise ContractError("%-formatting is not supported; use f-strings")
    if type(a) in INTLIKE and type(b) in INTLIKE:
        charge_bigint(a, b)
    return a % b


def floordiv(a: Any, b: Any) -> Any:
    if type(a) in INTLIKE and type(b) in INTLIKE:
        charge_bigint(a, b)
    return a // b


def or_(a: Any, b: Any) -> Any:
    _no_views(a, b)
    return check_result(a | b)


def and_(a: Any, b: Any) -> Any:
    _no_views(a, b)
    return a & b


def xor(a: Any, b: Any) -> Any:
    _no_views(a, b)
    return a ^ b


# In-place forms: lists and dicts change in place (as in Python); everything else rebinds.


def iadd(a: Any, b: Any) -> Any:
    if type(a) is list:
        items = b if type(b) is list or type(b) is tuple else materialize(b)
        check_items(len(a) + len(items))
        charge_items(len(items))
        a += items
        return a
    return add(a, b)


def imul(a: Any, b: Any) -> Any:
    if type(a) is list and type(b) in INTLIKE:
        check_items(len(a) * max(b, 0))
        a *= b
        charge_items(len(a))
        return a
    return mul(a, b)


def ior(a: Any, b: Any) -> Any:
    if type(a) is dict:
        other = b if type(b) is dict else dict_from(b)
        check_items(len(a) + len(other))
        charge_items(len(other))
        a |= other
        return a
    return or_(a, b)


BINARY: dict[str, Guard] = {
    "Add": add, "Sub": sub, "Mult": mul, "Pow": pow_, "LShift": lshift, "Mod": mod,
    "FloorDiv": floordiv, "BitOr": or_, "BitAnd": and_, "BitXor": xor,
}  # fmt: skip
INPLACE: dict[str, Guard] = {**BINARY, "Add": iadd, "Mult": imul, "BitOr": ior}


# -- comparisons ----------------------------------------------------------------------------------


def _compare_cost(a: Any, b: Any) -> None:
    ta, tb = type(a), type(b)
    if ta in CONTAINERS and tb in CONTAINERS:
        # CPython's comparison touches at most the smaller side (and recurses only as deep).
        weigh(a if len(a) <= len(b) else b)
    elif ta is tb and ta in STRINGS:
        charge_items(min(len(a), len(b)))


def eq(a: Any, b: Any) -> bool:
    _compare_cost(a, b)
    return bool(a == b)


def ne(a: Any, b: Any) -> bool:
    _compare_cost(a, b)
    return bool(a != b)


def lt(a: Any, b: Any) -> bool:
    _compare_cost(a, b)
    return bool(a < b)


def le(a: Any, b: Any) -> bool:
    _compare_cost(a, b)
    return bool(a <= b)


def gt(a: Any, b: Any) -> bool:
    _compare_cost(a, b)
    return bool(a > b)


def ge(a: Any, b: Any) -> bool:
    _compare_cost(a, b)
    return bool(a >= b)


def contains(item: Any, container: Any) -> bool:
    """`item in container`, charged for the elements CPython scans."""
    tc = type(container)
    if tc is dict or tc is DictKeys or tc is DictItems:
        if type(item) is tuple:
            weigh(item)  # hashing a tuple walks it
        return item in container
    if tc in STRINGS:
        charge_items(len(container))
        return item in container
    if tc is list or tc is tuple or tc is DictValues:
        charge_items(len(container) * weigh(item))
        return item in container
    if tc is range:
        # Nothing but an int equals an int here; this skips CPython's linear scan for others.
        return type(item) in INTLIKE and item in container
    return item in container  # generators charge per element; other objects raise TypeError


def not_contains(item: Any, container: Any) -> bool:
    return not contains(item, container)


COMPARE: dict[str, Guard] = {
    "Eq": eq, "NotEq": ne, "Lt": lt, "LtE": le, "Gt": gt, "GtE": ge,
    "In": contains, "NotIn": not_contains,
}  # fmt: skip


# -- subscripts, spreads, keys ----------------------------------------------------------------------


def getitem(obj: Any, key: Any) -> Any:
    if type(key) is tuple:
        weigh(key)
    return obj[key]


def setitem(obj: Any, key: Any, value: Any) -> None:
    if type(key) is tuple:
        weigh(key)
    obj[key] = value


def delitem(obj: Any, key: Any) -> None:
    if type(key) is tuple:
        weigh(key)
    elif type(obj) is list:
        charge_items(len(obj))  # the tail moves
    del obj[key]


def slice_(obj: Any, lower: Any, upper: Any, step: Any) -> Any:
    t = type(obj)
    if t not in SEQUENCES and t is not range:
        raise TypeError(f"{t.__name__!r} object is not sliceable")
    result = obj[lower:upper:step]
    if t is not range:
        charge_items(len(result))
    return result


def key(k: Any) -> Any:
    """A dict display key: hashing a tuple walks it."""
    if type(k) is tuple:
        weigh(k)
    return k


def spread(value: Any) -> Any:
    """The operand of `*value` in a call or display."""
    if type(value) in SIZED:
        n = len(value)
        check_items(n)
        charge_items(n)
        return value
    return materialize(value)


def spread_kw(value: Any) -> Any:
    """The operand of `**value` in a call or dict display."""
    if type(value) is not dict:
        raise TypeError(f"argument after ** must be a dict, not {type(value).__name__}")
    charge_items(len(value))
    return value


def materialize(iterable: Any) -> list[Any]:
    """The elements `iterable` yields, one step per element. Raises ValueTooLarge past ITEMS_MAX."""
    if type(iterable) in SIZED:
        n = len(iterable)
        check_items(n)
        charge(n)
        return list(iterable)
    out: list[Any] = []
    for element in iterable:
        charge(1)
        out.append(element)
    check_items(len(out))
    return out


def dict_from(source: Any) -> dict[Any, Any]:
    """dict(source) for a dict or an iterable of pairs, one step per element."""
    if type(source) is dict:
        check_items(len(source))
        charge(len(source))
        return dict(source)
    pairs = materialize(source)
    for pair in pairs:
        if type(pair) in (tuple, list) and len(pair) == 2 and type(pair[0]) is tuple:
            weigh(pair[0])
    return dict(pairs)


# -- f-strings ------------------------------------------------------------------------------------

_CONVERSIONS = {-1: None, ord("s"): "s", ord("r"): "r", ord("a"): "a"}


def fmt(value: Any, conversion: int, spec: str) -> str:
    """One `{value!conversion:spec}` field of an f-string (the spec was checked at deploy)."""
    kind = _CONVERSIONS[conversion]
    if kind == "r":
        value = render(value)
    elif kind == "a":
        value = render(value).encode("ascii", "backslashreplace").decode("ascii")
    elif kind == "s":
        value = to_str(value)
    if not spec:
        text = value if type(value) is str else to_str(value)
        charge_items(len(text))  # the f-string copies it
        return text
    t = type(value)
    if t is int:
        if value.bit_length() > DECIMAL_BITS_SAFE:
            raise ValueTooLarge(f"format specs apply to integers of at most {DECIMAL_BITS_SAFE} bits")
        charge_bigint(value, value)
    if t not in (int, bool, str):
        raise TypeError(f"unsupported format string passed to {t.__name__}.__format__")
    result = format(value, spec)
    charge_items(len(result))
    return result


# -- exception handlers ---------------------------------------------------------------------------


def caught() -> None:
    """First statement of every `except` block: host-resource failures are not contract failures.

    MemoryError and RecursionError depend on the host, so contract code must never handle
    them; they abort the call (and the block) instead of producing a receipt.
    """
    exc = sys.exception()
    if isinstance(exc, MemoryError | RecursionError):
        raise exc


# -- attributes -----------------------------------------------------------------------------------

_MISSING: Any = object()
METHODS: dict[type, dict[str, Guard | None]] = {}  # filled by `methods`
TYPE_ATTRS: dict[int, dict[str, Any]] = {}  # id of a builtin wrapper -> its attributes (int.from_bytes)


def _no_attr(obj: Any, name: str) -> AttributeError:
    return AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r} in contracts")


def _is_own(obj: Any) -> bool:
    """An instance of a contract-defined class, or such a class itself."""
    return getattr(obj, MARK, False) is True


def attr(obj: Any, name: str) -> Any:
    """`obj.name` (a load)."""
    table = METHODS.get(type(obj))
    if table is not None:
        guard = table.get(name, _MISSING)
        if guard is _MISSING:
            raise _no_attr(obj, name)
        if guard is None:
            return getattr(obj, name)
        return partial(guard, obj)
    if name in FOREIGN_ATTRS or _is_own(obj) or (name == "args" and isinstance(obj, BaseException)):
        return getattr(obj, name)
    extra = TYPE_ATTRS.get(id(obj))
    if extra is not None and name in extra:
        return extra[name]
    raise _no_attr(obj, name)


def callm(obj: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    """`obj.name(*args, **kwargs)`."""
    table = METHODS.get(type(obj))
    if table is not None:
        guard = table.get(name, _MISSING)
        if guard is _MISSING:
            raise _no_attr(obj, name)
        if guard is None:
            return getattr(obj, name)(*args, **kwargs)
        return guard(obj, *args, **kwargs)
    if name in FOREIGN_ATTRS or _is_own(obj):
        return getattr(obj, name)(*args, **kwargs)
    return attr(obj, name)(*args, **kwargs)


def setattr_(obj: Any, name: str, value: Any) -> None:
    """`obj.name = value`: only on instances of contract-defined classes (never on a class)."""
    if type(obj) is not type and _is_own(obj):
        setattr(obj, name, value)
        return
    raise AttributeError(f"attributes of {type(obj).__name__!r} objects can't be set in contracts")
