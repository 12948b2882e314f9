"""The builtins contract code runs with: a short allowlist, iterating ones metered.

Functions that consume iterables charge one step per element consumed (lazy ones - map,
filter, zip, enumerate, reversed - per element produced); constructors refuse values over
the size limits; `str` never shows memory addresses; `isinstance` understands the wrappers.
Nothing here reaches files, the clock, the network, modules or interpreter internals.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from types import FunctionType
from typing import Any

from consortia.execution.contract import Contract, ContractError, view
from consortia.execution.sandbox.guards import INTLIKE, MARK, dict_from, materialize
from consortia.execution.sandbox.limits import NUMBER_DIGITS_MAX
from consortia.execution.sandbox.meter import charge
from consortia.execution.sandbox.methods import (
    bytes_fromhex,
    bytes_maketrans,
    check_codec,
    dict_fromkeys,
    int_from_bytes,
    produced,
    register_type_attrs,
    sort_list,
    str_maketrans,
)
from consortia.execution.sandbox.values import (
    SIZED,
    STRINGS,
    charge_bigint,
    charge_items,
    check_int,
    check_items,
    max_weight,
    to_str,
    weigh,
)

CONTRACT_MODULE_NAME = "contract"  # the __name__ contract code runs under; see runtime
_NOT_GIVEN: Any = object()
_POWER_OF_TWO_BASES = frozenset({2, 4, 8, 16, 32})
BASE_CLASSES = (Contract, ContractError, Exception, ValueError, KeyError, IndexError)


def _metered(iterator: Iterator[Any]) -> Iterator[Any]:
    for element in iterator:
        charge(1)
        yield element


def m_list(iterable: Any = ()) -> list[Any]:
    return materialize(iterable)


def m_tuple(iterable: Any = ()) -> tuple[Any, ...]:
    if type(iterable) is tuple:
        return iterable
    return tuple(materialize(iterable))


def m_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    if len(args) > 1:
        raise TypeError(f"dict expected at most 1 argument, got {len(args)}")
    result = dict_from(args[0]) if args else {}
    result.update(kwargs)
    return result


def m_sorted(iterable: Any, /, *, key: Any = None, reverse: Any = False) -> list[Any]:
    items = materialize(iterable)
    sort_list(items, key, reverse)
    return items


def _extreme(pick: Any, args: tuple[Any, ...], key: Any, default: Any) -> Any:
    if not args:
        raise TypeError(f"{pick.__name__} expected at least 1 argument, got 0")
    items = materialize(args[0]) if len(args) == 1 else list(args)
    if key is None:
        charge_items(len(items) * max_weight(items))
        weighed = None
    else:

        def weighed(element: Any) -> Any:
            k = key(element)
            charge_items(weigh(k))
            return k

    options: dict[str, Any] = {} if default is _NOT_GIVEN else {"default": default}
    if len(args) == 1:
        return pick(items, key=weighed, **options)
    return pick(*items, key=weighed, **options)


def m_min(*args: Any, key: Any = None, default: Any = _NOT_GIVEN) -> Any:
    return _extreme(builtins.min, args, key, default)


def m_max(*args: Any, key: Any = None, default: Any = _NOT_GIVEN) -> Any:
    return _extreme(builtins.max, args, key, default)


def m_sum(iterable: Any, /, start: Any = 0) -> int:
    if type(start) not in INTLIKE:
        raise ContractError("sum() adds integers only; use str.join or list concatenation")
    return check_int(builtins.sum(materialize(iterable), start))


def m_any(iterable: Any) -> bool:
    for element in iterable:
        charge(1)
        if element:
            return True
    return False


def m_all(iterable: Any) -> bool:
    for element in iterable:
        charge(1)
        if not element:
            return False
    return True


def m_map(function: Any, iterable: Any, /, *iterables: Any) -> Iterator[Any]:
    return _metered(builtins.map(function, iterable, *iterables))


def m_filter(function: Any, iterable: Any, /) -> Iterator[Any]:
    return _metered(builtins.filter(function, iterable))


def m_zip(*iterables: Any, strict: bool = False) -> Iterator[tuple[Any, ...]]:
    return _metered(builtins.zip(*iterables, strict=strict))


def m_enumerate(iterable: Any, start: Any = 0) -> Iterator[tuple[int, Any]]:
    return _metered(builtins.enumerate(iterable, start))


def m_reversed(sequence: Any, /) -> Iterator[Any]:
    return _metered(builtins.reversed(sequence))


def m_int(*args: Any, **kwargs: Any) -> int:
    if args and type(args[0]) in STRINGS:
        base = args[1] if len(args) > 1 else kwargs.get("base", 10)
        # CPython limits decimal parsing by a per-process setting; refuse long text everywhere.
        if len(args[0]) > NUMBER_DIGITS_MAX and base not in _POWER_OF_TWO_BASES:
            raise ContractError(f"int() of text longer than {NUMBER_DIGITS_MAX} characters (use base 16)")
        charge_items(len(args[0]) + (len(args[0]) ** 2 >> 12))  # decimal parsing is quadratic
    return check_int(builtins.int(*args, **kwargs))


def m_divmod(a: Any, b: Any, /) -> Any:
    if type(a) in INTLIKE and type(b) in INTLIKE:
        charge_bigint(a, b)
    return builtins.divmod(a, b)


def m_str(*args: Any, **kwargs: Any) -> str:
    if len(args) == 1 and not kwargs:
        return to_str(args[0])
    if not args and not kwargs:
        return ""
    encoding = args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8")
    errors = args[2] if len(args) > 2 else kwargs.get("errors", "strict")
    check_codec(encoding, errors)
    source = args[0] if args else kwargs.get("object", b"")
    if type(source) is bytes:
        charge_items(len(source))
    return produced(builtins.str(*args, **kwargs))  # type: ignore[no-any-return]


def m_bytes(*args: Any, **kwargs: Any) -> bytes:
    if not args and not kwargs:
        return b""
    if len(args) > 1 or kwargs:
        encoding = args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8")
        errors = args[2] if len(args) > 2 else kwargs.get("errors", "strict")
        check_codec(encoding, errors)
        if args and type(args[0]) is str:
            charge_items(len(args[0]))
        return produced(builtins.bytes(*args, **kwargs))  # type: ignore[no-any-return]
    source = args[0]
    t = type(source)
    if t in INTLIKE:
        check_items(source)
        charge_items(max(source, 0))
        return builtins.bytes(source)
    if t is bytes or t is str:
        return builtins.bytes(source)  # bytes(str) raises its own TypeError
    if t not in SIZED and not hasattr(t, "__iter__"):
        return builtins.bytes(source)  # raises bytes' own TypeError
    return builtins.bytes(materialize(source))


def _real_type(cls: Any) -> Any:
    if type(cls) is tuple:
        raise TypeError("isinstance() does not accept nested tuples in contracts")
    return _WRAPPED.get(id(cls), cls)


def m_isinstance(obj: Any, classinfo: Any, /) -> bool:
    if type(classinfo) is tuple:
        charge_items(len(classinfo))
        return builtins.isinstance(obj, tuple(_real_type(c) for c in classinfo))
    return builtins.isinstance(obj, _WRAPPED.get(id(classinfo), classinfo))


def m_view(fn: Any) -> Any:
    """`@view` for contract code: only on the contract's own functions (never a shared object)."""
    if not (isinstance(fn, FunctionType) and fn.__module__ == CONTRACT_MODULE_NAME):
        raise TypeError("@view applies only to functions the contract defines")
    return view(fn)


def build_class(func: Any, name: str, /, *bases: Any, **keywords: Any) -> type:
    """`class` statements: check the bases and mark the class as the contract's own."""
    if keywords:
        raise TypeError("class keywords are not allowed in contracts")
    for base in bases:
        if base not in BASE_CLASSES and not (isinstance(base, type) and MARK in vars(base)):
            raise TypeError(f"a contract class may not derive from {getattr(base, '__name__', base)!r}")
    cls: type = builtins.__build_class__(func, name, *bases)
    type.__setattr__(cls, MARK, True)
    return cls


_WRAPPED: dict[int, type] = {
    id(m_list): list,
    id(m_tuple): tuple,
    id(m_dict): dict,
    id(m_int): int,
    id(m_str): str,
    id(m_bytes): bytes,
}


def _str_maketrans(*args: Any) -> Any:
    return str_maketrans("", *args)


def _bytes_maketrans(*args: Any) -> Any:
    return bytes_maketrans(b"", *args)


def _dict_fromkeys(iterable: Any, value: Any = None) -> dict[Any, Any]:
    return dict_fromkeys({}, iterable, value)


# The class-level methods contracts reach through the wrapped type names (`int.from_bytes`).
# Plain functions, never partials: a partial's `args` could hand out a shared object.
register_type_attrs(m_int, {"from_bytes": int_from_bytes})
register_type_attrs(m_bytes, {"fromhex": bytes_fromhex, "maketrans": _bytes_maketrans})
register_type_attrs(m_str, {"maketrans": _str_maketrans})
register_type_attrs(m_dict, {"fromkeys": _dict_fromkeys})

SAFE_BUILTINS: dict[str, Any] = {
    "__build_class__": build_class,
    "len": builtins.len,
    "range": builtins.range,
    "abs": builtins.abs,
    "bool": builtins.bool,
    "divmod": m_divmod,
    "hex": builtins.hex,
    "ord": builtins.ord,
    "chr": builtins.chr,
    "min": m_min,
    "max": m_max,
    "sum": m_sum,
    "sorted": m_sorted,
    "reversed": m_reversed,
    "enumerate": m_enumerate,
    "zip": m_zip,
    "all": m_all,
    "any": m_any,
    "map": m_map,
    "filter": m_filter,
    "int": m_int,
    "str": m_str,
    "bytes": m_bytes,
    "list": m_list,
    "dict": m_dict,
    "tuple": m_tuple,
    "isinstance": m_isinstance,
    "Exception": Exception,
    "ValueError": ValueError,
    "KeyError": KeyError,
    "IndexError": IndexError,
    "ContractError": ContractError,
    "Contract": Contract,
    "view": m_view,
}
