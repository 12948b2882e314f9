"""The frame of native system contracts: a method table with views, arity and steps."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from consortia.execution.context import Context, StepMeter
from consortia.execution.contract import ContractError
from consortia.execution.overlay import Overlay
from consortia.identity.policy import satisfies
from consortia.types import Caller, ChannelConfig, Event, Policy

STEPS_NATIVE_CALL = 20
ACCOUNT_CHARS_MAX = 200

F = TypeVar("F", bound=Callable[..., Any])

# What a direct path gives for a transaction that succeeds: its events, steps and result,
# and its writes (key, value) sorted by key.
Direct = tuple[list[Event], int, Any, list[tuple[bytes, bytes]]]
# A direct path: (block state, signer, the transaction's args, its step limit) -> Direct, or
# None when the transaction must run as a call (see NativeContract.direct_paths).
DirectPath = Callable[[Overlay, Caller, list[Any], int], Direct | None]


def method(*, view: bool = False) -> Callable[[F], F]:
    """Mark a method of a NativeContract as callable (as a view when `view`)."""

    def mark(fn: F) -> F:
        fn.__native_view__ = view  # type: ignore[attr-defined]
        return fn

    return mark


class NativeContract:
    """A trusted contract written in Python; methods take (self, ctx, *args)."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._table: dict[str, tuple[Callable[..., Any], int]] = {}
        self.methods: dict[str, bool] = {}
        for attr, fn in type(self).__dict__.items():
            view = getattr(fn, "__native_view__", None)
            if view is None:
                continue
            arity = len(inspect.signature(fn).parameters) - 2  # self, ctx
            self._table[attr] = (getattr(self, attr), arity)
            self.methods[attr] = bool(view)

    def invoke(self, ctx: Context, method: str, args: list[Any], meter: StepMeter) -> Any:
        """Raises ContractError for an unknown method or a wrong number of arguments."""
        entry = self._table.get(method)
        if entry is None:
            raise ContractError(f"unknown method {self.name}.{method}")
        fn, arity = entry
        if len(args) != arity:
            raise ContractError(f"{self.name}.{method} takes {arity} arguments, got {len(args)}")
        meter.charge(STEPS_NATIVE_CALL)
        return fn(ctx, *args)

    def direct_paths(self) -> dict[str, DirectPath]:
        """Methods that a transaction calling them directly may run without a context.

        A direct path computes, from the state before the transaction, exactly what the
        call would give (events, steps including the call's own, result, writes), but only
        for a transaction that succeeds plainly; for anything else (bad arguments, a failure,
        running out of steps, unusual types) it returns None, having written nothing, and
        the executor runs the call as usual. Hot methods only: each is a second
        implementation that must agree with the method byte for byte.
        """
        return {}


def require_admin(ctx: Context, what: str) -> None:
    """Raises ContractError unless an org admin signed the transaction."""
    if ctx.caller.role != "admin":
        raise ContractError(f"{what} requires an org admin")


def require_str(value: Any, what: str, chars_max: int, min_chars: int = 1) -> str:
    """Raises ContractError unless `value` is a str of min_chars..chars_max without \\x00."""
    if not isinstance(value, str) or not min_chars <= len(value) <= chars_max or "\x00" in value:
        raise ContractError(f"{what} must be a str of {min_chars}..{chars_max} characters without \\x00")
    return value


def require_int(value: Any, what: str, lo: int, hi: int) -> int:
    """Raises ContractError unless `value` is an int (not a bool) in lo..hi."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ContractError(f"{what} must be an integer in {lo}..{hi}")
    return value


def orgs_meet(policy: Policy, config: ChannelConfig, orgs: Iterable[str]) -> bool:
    """Whether approvals recorded from these orgs' admins satisfy `policy`."""
    return satisfies(policy, config, (Caller(org, "admin", "", b"") for org in orgs))
