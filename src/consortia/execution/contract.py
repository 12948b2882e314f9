"""What contract source sees: the `Contract` base class, `ContractError` and `@view`.

Contracts import these as `from consortia.contract import Contract, ContractError, view`
(the import is optional inside the sandbox, where the three names are predefined).

At call time the runtime creates a fresh instance of the contract class and sets `self.ctx`,
the call context. It offers (see consortia.execution.context):
    ctx.get(key) / ctx.put(key, value) / ctx.delete(key)   state of this contract, plain values
    ctx.range(start, end) / ctx.prefix(prefix)              ordered [(key, value), ...]
    ctx.composite_key(object_type, *attrs)                  a key for prefix queries
    ctx.emit(name, payload)                                 an event in the receipt
    ctx.call(contract, method, *args)                       call another contract
    ctx.caller.org / .role / .subject / .attributes         who signed the transaction
    ctx.height / ctx.timestamp_ms / ctx.tx_id               the block and transaction

Every method of a contract class whose name does not begin with "_" is an entry point a
transaction can call; `@view` marks the ones that only read state.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType
from typing import Any, TypeVar

VIEW_ATTR = "consortia_view"
MESSAGE_CHARS_MAX = 1000

F = TypeVar("F", bound=Callable[..., Any])


class ContractError(Exception):
    """Raised by a contract to fail the call; its message goes into the receipt.

    The message is fixed when the error is made and never shows memory addresses, so every
    node writes the same receipt: a str is kept as is (truncated to MESSAGE_CHARS_MAX), an
    int, bool, None or bytes is shown as Python shows it, anything else by its type name.
    """

    def __init__(self, message: object = "") -> None:
        text = _message_text(message)
        super().__init__(text)
        self.message = text

    def __str__(self) -> str:
        return self.message


def _message_text(message: object) -> str:
    if isinstance(message, str):
        text = message
    elif message is None or isinstance(message, bool):
        text = str(message)
    elif isinstance(message, int):
        # Decimal conversion of huge ints is limited per process; hex is not.
        text = str(message) if message.bit_length() <= 1024 else hex(message)
    elif isinstance(message, bytes):
        text = repr(message[:MESSAGE_CHARS_MAX])
    else:
        text = f"<{type(message).__name__}>"
    if len(text) > MESSAGE_CHARS_MAX:
        text = text[: MESSAGE_CHARS_MAX - 3] + "..."
    return text


def view(fn: F) -> F:
    """Mark a contract method as read-only: queries may call it; it may not write state."""
    setattr(fn, VIEW_ATTR, True)
    return fn


def is_view(fn: object) -> bool:
    return getattr(fn, VIEW_ATTR, False) is True


class Contract:
    """Base class of a contract. Subclass it once per contract source.

    `ctx` is set by the runtime on a fresh instance before each call; instance attributes
    never outlive a call, so all lasting state goes through `ctx.put`.
    """

    ctx: Any


def public_methods(cls: type) -> dict[str, bool]:
    """Entry points of a contract class, name -> is a view, sorted by name.

    Plain functions defined on `cls` or its bases (other than Contract and object) whose
    name does not begin with "_".
    """
    found: dict[str, bool] = {}
    for klass in reversed(cls.__mro__):
        if klass is Contract or klass is object:
            continue
        for name, value in vars(klass).items():
            if isinstance(value, FunctionType) and not name.startswith("_"):
                found[name] = is_view(value)
    return dict(sorted(found.items()))
