"""The methods of builtin value types a contract may call, each behind a guard.

The list is fixed (not read from the running interpreter), so a method added by a newer
CPython is absent everywhere rather than present on some nodes. Guards charge for the
elements a method scans or produces and refuse results over the size limits before building
them when the result can be much larger than the inputs (join, replace, padding, to_bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from consortia.execution.contract import ContractError
from consortia.execution.sandbox.guards import INTLIKE, METHODS, TYPE_ATTRS, Guard, dict_from, materialize
from consortia.execution.sandbox.limits import SIZE_SHIFT
from consortia.execution.sandbox.meter import charge
from consortia.execution.sandbox.values import (
    STRINGS,
    DictItems,
    DictKeys,
    DictValues,
    charge_items,
    check_int,
    check_items,
    max_weight,
    render,
    weigh,
)

ENCODINGS = frozenset({"utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1"})
ENCODING_ERRORS = frozenset({"strict", "ignore", "replace"})


def check_codec(encoding: Any, errors: Any) -> None:
    """Raises ContractError for a codec or error handler outside the portable few."""
    if not (isinstance(encoding, str) and encoding.lower().replace("_", "-") in ENCODINGS):
        raise ContractError(f"encoding {encoding!r} is not available; use one of {sorted(ENCODINGS)}")
    if not (isinstance(errors, str) and errors in ENCODING_ERRORS):
        raise ContractError(
            f"error handler {errors!r} is not available; use one of {sorted(ENCODING_ERRORS)}"
        )


def produced(result: Any, per_element: bool = False) -> Any:
    """Check and charge a value a method produced; lists of new objects cost a step each."""
    t = type(result)
    if t in STRINGS or t is dict:
        check_items(len(result))
        charge_items(len(result))
    elif t is list or t is tuple:
        check_items(len(result))
        if per_element:
            charge(len(result))
        else:
            charge_items(len(result))
    elif t is int:
        check_int(result)
    return result


def _linear(method: Callable[..., Any], per_element: bool = False) -> Guard:
    """A method that scans its receiver once: one step per 16 elements plus its arguments' weight."""

    def guard(obj: Any, *args: Any, **kwargs: Any) -> Any:
        cost = len(obj) >> SIZE_SHIFT
        for arg in args:
            cost += weigh(arg)
        for arg in kwargs.values():
            cost += weigh(arg)
        charge(cost)
        return produced(method(obj, *args, **kwargs), per_element)

    return guard


def _scan(method: Callable[..., Any]) -> Guard:
    """count/index/remove: compares the item with each element."""

    def guard(obj: Any, *args: Any, **kwargs: Any) -> Any:
        weight = weigh(args[0]) if args else 1
        charge_items(len(obj) * weight)
        return method(obj, *args, **kwargs)

    return guard


def _keyed(method: Callable[..., Any]) -> Guard:
    """get/pop/setdefault: hashing a tuple key walks it."""

    def guard(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if args and type(args[0]) is tuple:
            weigh(args[0])
        return method(obj, *args, **kwargs)

    return guard


def _pad(method: Callable[..., Any]) -> Guard:
    """center/ljust/rjust/zfill: the width is the result's length."""

    def guard(obj: Any, width: Any, *args: Any) -> Any:
        if type(width) in INTLIKE:
            check_items(width)
            charge_items(max(len(obj), width))
        return method(obj, width, *args)

    return guard


def _join(method: Callable[..., Any]) -> Guard:
    def guard(obj: Any, iterable: Any) -> Any:
        items = iterable if type(iterable) in (list, tuple) else materialize(iterable)
        charge_items(len(items))
        try:
            total = sum(map(len, items))
        except TypeError:
            return method(obj, items)  # raises join's own TypeError
        check_items(total + len(obj) * max(len(items) - 1, 0))
        return produced(method(obj, items))

    return guard


def _replace(method: Callable[..., Any]) -> Guard:
    def guard(obj: Any, old: Any, new: Any, count: Any = -1) -> Any:
        t = type(obj)
        if type(old) is not t or type(new) is not t or type(count) not in INTLIKE:
            return method(obj, old, new, count)  # raises replace's own TypeError
        charge_items(len(obj))
        occurrences = obj.count(old)
        if count >= 0:
            occurrences = min(occurrences, count)
        check_items(len(obj) + occurrences * (len(new) - len(old)))
        return produced(method(obj, old, new, count))

    return guard


def _expandtabs(method: Callable[..., Any], tab: Any) -> Guard:
    def guard(obj: Any, tabsize: Any = 8) -> Any:
        if type(tabsize) in INTLIKE:
            charge_items(len(obj))
            check_items(len(obj) + obj.count(tab) * max(tabsize, 0))
        return produced(method(obj, tabsize))

    return guard


def _str_translate(obj: str, table: Any) -> str:
    weigh(table)
    if type(table) is dict:
        values: Iterable[Any] = table.values()
    elif type(table) in (list, tuple):
        values = table
    else:
        values = ()
    longest = max((len(v) for v in values if type(v) is str), default=1)
    check_items(len(obj) * max(longest, 1))
    return produced(str.translate(obj, table))  # type: ignore[no-any-return]


def _str_encode(obj: str, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    check_codec(encoding, errors)
    charge_items(len(obj))
    return produced(str.encode(obj, encoding, errors))  # type: ignore[no-any-return]


def _bytes_decode(obj: bytes, encoding: Any = "utf-8", errors: Any = "strict") -> str:
    check_codec(encoding, errors)
    charge_items(len(obj))
    return produced(bytes.decode(obj, encoding, errors))  # type: ignore[no-any-return]


def _maketrans(maker: Callable[..., Any]) -> Guard:
    def guard(obj: Any, *args: Any) -> Any:
        for arg in args:
            weigh(arg)
        return produced(maker(*args))

    return guard


str_maketrans = _maketrans(str.maketrans)
bytes_maketrans = _maketrans(bytes.maketrans)


def bytes_fromhex(text: Any) -> bytes:
    if type(text) is str:
        charge_items(len(text))
    return produced(bytes.fromhex(text))  # type: ignore[no-any-return]


def int_from_bytes(data: Any, byteorder: Any = "big", *, signed: Any = False) -> int:
    if type(data) is bytes:
        charge_items(len(data))
    else:
        data = materialize(data)
    return check_int(int.from_bytes(data, byteorder, signed=signed))


def _int_to_bytes(obj: int, length: Any = 1, byteorder: Any = "big", *, signed: Any = False) -> bytes:
    if type(length) in INTLIKE:
        check_items(length)
        charge_items(length)
    return int.to_bytes(obj, length, byteorder, signed=signed)


def _list_extend(obj: list[Any], iterable: Any) -> None:
    items = iterable if type(iterable) in (list, tuple) else materialize(iterable)
    check_items(len(obj) + len(items))
    charge_items(len(items))
    obj.extend(items)


def _list_pop(obj: list[Any], *args: Any) -> Any:
    if args:
        charge_items(len(obj))  # the tail moves
    return obj.pop(*args)


def sort_list(items: list[Any], key: Any = None, reverse: Any = False) -> None:
    """Sort in place, charging about n*log2(n) comparisons of the heaviest element (or key)."""
    n = len(items)
    if key is None:
        charge_items(n * n.bit_length() * max_weight(items))
        items.sort(reverse=reverse)
        return
    heaviest = [1]

    def weighed(element: Any) -> Any:
        k = key(element)
        w = weigh(k)
        if w > heaviest[0]:
            heaviest[0] = w
        return k

    # CPython computes every key before the first comparison, so the walk bounds the sort.
    items.sort(key=weighed, reverse=reverse)
    charge_items(n * n.bit_length() * heaviest[0])


def _list_sort(obj: list[Any], *, key: Any = None, reverse: Any = False) -> None:
    sort_list(obj, key, reverse)


def _dict_update(obj: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
    if len(args) > 1:
        dict.update(obj, *args)  # raises update's own TypeError
    other = dict_from(args[0]) if args else {}
    check_items(len(obj) + len(other) + len(kwargs))
    obj.update(other, **kwargs)


def dict_fromkeys(obj: dict[Any, Any], iterable: Any, value: Any = None) -> dict[Any, Any]:
    keys = materialize(iterable)
    for k in keys:
        if type(k) is tuple:
            weigh(k)
    return dict.fromkeys(keys, value)


def _view_isdisjoint(obj: Any, other: Any) -> bool:
    items = materialize(other)
    for item in items:
        if type(item) is tuple:
            weigh(item)
    return bool(obj.isdisjoint(items))


def _range_count(obj: range, value: Any) -> int:
    # Only ints equal ints here; this skips CPython's linear scan for anything else.
    return obj.count(value) if type(value) in INTLIKE else 0


def _names(text: str) -> list[str]:
    return text.split()


def _range_index(obj: range, value: Any) -> int:
    if type(value) in INTLIKE:
        return obj.index(value)
    raise ValueError(f"{render(value)} is not in range")


_STR_LINEAR = _names(
    "capitalize casefold count endswith find index isalnum isalpha isascii isdecimal isdigit "
    "isidentifier islower isnumeric isprintable isspace istitle isupper lower lstrip partition "
    "removeprefix removesuffix rfind rindex rpartition rstrip startswith strip swapcase title upper"
)
_BYTES_LINEAR = _names(
    "capitalize count endswith find index isalnum isalpha isascii isdigit islower isspace istitle "
    "isupper lower lstrip partition removeprefix removesuffix rfind rindex rpartition rstrip "
    "startswith strip swapcase title upper translate hex"
)
_SPLITS = ("split", "rsplit", "splitlines")


def _string_table(t: Any, linear: list[str]) -> dict[str, Guard | None]:
    table: dict[str, Guard | None] = {name: _linear(getattr(t, name)) for name in linear}
    table.update({name: _linear(getattr(t, name), per_element=True) for name in _SPLITS})
    table.update({name: _pad(getattr(t, name)) for name in ("center", "ljust", "rjust", "zfill")})
    table["join"] = _join(t.join)
    table["replace"] = _replace(t.replace)
    table["expandtabs"] = _expandtabs(t.expandtabs, "\t" if t is str else b"\t")
    table["maketrans"] = str_maketrans if t is str else bytes_maketrans
    return table


def _install() -> None:
    str_table = _string_table(str, _STR_LINEAR)
    str_table.update({"translate": _str_translate, "encode": _str_encode})
    bytes_table = _string_table(bytes, _BYTES_LINEAR)
    bytes_table.update({"decode": _bytes_decode, "fromhex": lambda obj, text: bytes_fromhex(text)})
    list_table: dict[str, Guard | None] = {
        "append": list.append,
        "clear": list.clear,
        "copy": _linear(list.copy),
        "count": _scan(list.count),
        "index": _scan(list.index),
        "remove": _scan(list.remove),
        "extend": _list_extend,
        "insert": _linear(list.insert),
        "pop": _list_pop,
        "reverse": _linear(list.reverse),
        "sort": _list_sort,
    }
    tuple_table: dict[str, Guard | None] = {"count": _scan(tuple.count), "index": _scan(tuple.index)}
    dict_table: dict[str, Guard | None] = {
        "get": _keyed(dict.get),
        "pop": _keyed(dict.pop),
        "setdefault": _keyed(dict.setdefault),
        "keys": dict.keys,
        "values": dict.values,
        "items": dict.items,
        "popitem": dict.popitem,
        "clear": dict.clear,
        "copy": _linear(dict.copy),
        "update": _dict_update,
        "fromkeys": dict_fromkeys,
    }
    int_table: dict[str, Guard | None] = {
        "bit_length": int.bit_length,
        "bit_count": int.bit_count,
        "conjugate": int.conjugate,
        "as_integer_ratio": int.as_integer_ratio,
        "to_bytes": _int_to_bytes,
        "from_bytes": lambda obj, *args, **kwargs: int_from_bytes(*args, **kwargs),
        "real": None,
        "imag": None,
        "numerator": None,
        "denominator": None,
    }
    range_table: dict[str, Guard | None] = {
        "count": _range_count,
        "index": _range_index,
        "start": None,
        "stop": None,
        "step": None,
    }
    METHODS.update(
        {
            str: str_table,
            bytes: bytes_table,
            list: list_table,
            tuple: tuple_table,
            dict: dict_table,
            int: int_table,
            bool: int_table,
            range: range_table,
            DictKeys: {"isdisjoint": _view_isdisjoint},
            DictItems: {"isdisjoint": _view_isdisjoint},
            DictValues: {},
        }
    )


def register_type_attrs(wrapper: object, attrs: dict[str, Any]) -> None:
    """Attributes of a builtin wrapper contract code may read (e.g. `int.from_bytes`)."""
    TYPE_ATTRS[id(wrapper)] = attrs


_install()
