"""Shared helpers for the sandbox tests: a fake call context and one-method contracts."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from consortia.execution.sandbox import CompiledContract, Meter, compile_contract
from consortia.types import Caller

TRACEABILITY_PATH = (
    Path(__file__).resolve().parents[2] / "src" / "consortia" / "contracts" / "traceability.py"
)


# A contract using most of what the sandbox allows.
ORDINARY_CONTRACT = '''
"""A contract using most of what is allowed."""
from consortia.contract import Contract, ContractError, view
from consortia.contract import view as readonly

LIMIT = 10 ** 6
PAIR = (1, "a", b"b", None, True, -3)


def double(x, y=2, *rest, scale=1, **options):
    return x * y * scale


class Base:
    unit = "kg"


class NotEnough(ContractError):
    pass


class Ledger(Contract, Base):
    """Docstring."""

    fee: int = 5

    def put(self, key, value):
        ctx = self.ctx
        items = [v for v in value if v] + [k for k, _ in {"a": 1}.items()]
        total = sum(x for x in range(10)) + len(items)
        total //= 2
        total >>= 1
        mapping = {str(i): i * i for i in range(3)}
        mapping["1"] += 1 if "1" in mapping else 0
        while total > 0 and not False:
            total -= 1
            if total == 3:
                continue
            elif total < -1:
                break
        else:
            total = 0
        try:
            ctx.put(key, {"items": items, "total": total, "tag": f"{key!r}:{total:>4}"})
        except ContractError as exc:
            raise NotEnough(str(exc)) from exc
        except (KeyError, IndexError):
            pass
        finally:
            total = -1
        first, (second, third) = 1, (2, 3)
        del mapping["0"], first
        ok = (n := len(key)) >= 0 and 0 <= total + 1 < LIMIT and isinstance(key, str)
        return sorted(items, key=lambda v: -v if isinstance(v, int) else 0), ok, n

    @view
    def get(self, key):
        return self.ctx.get(key)

    @readonly
    def caller(self):
        c = self.ctx.caller
        return [c.org, c.role, self.ctx.height, self.ctx.timestamp_ms, self.ctx.tx_id]
'''


class FakeCtx:
    """The documented `self.ctx` API over a dict, with a fixed caller and block."""

    def __init__(self, store: dict[str, Any] | None = None, org: str = "org1", height: int = 7) -> None:
        self.store: dict[str, Any] = {} if store is None else store
        self.caller = Caller(org, "client", f"client1@{org}", b"\x01" * 32, {"dept": "qa"})
        self.height = height
        self.timestamp_ms = 1_700_000_000_000
        self.tx_id = "ab" * 32
        self.events: list[tuple[str, Any]] = []
        self.secret = "not for contracts"

    def get(self, key: str) -> Any:
        return self.store.get(key)

    def put(self, key: str, value: Any) -> None:
        self.store[key] = value

    def delete(self, key: str) -> None:
        self.store.pop(key, None)

    def composite_key(self, object_type: str, *attrs: str) -> str:
        return "\x00" + "\x00".join((object_type, *attrs)) + "\x00"

    def prefix(self, prefix: str) -> list[tuple[str, Any]]:
        return sorted((k, v) for k, v in self.store.items() if k.startswith(prefix))

    def emit(self, name: str, payload: Any = None) -> None:
        self.events.append((name, payload))


def method_contract(body: str, params: str = "self, *args", header: str = "") -> str:
    """Source of a contract `T` with one method `m` whose body is `body`."""
    return (
        textwrap.dedent(header)
        + "\nclass T(Contract):\n"
        + f"    def m({params}):\n"
        + textwrap.indent(textwrap.dedent(body), " " * 8)
    )


def compiled(body: str, params: str = "self, *args", header: str = "") -> CompiledContract:
    return compile_contract(method_contract(body, params, header))


def run(body: str, *args: Any, steps_max: int = 1_000_000, header: str = "") -> tuple[Any, int]:
    """Compile a one-method contract, call it with `args`; returns (result, steps used)."""
    contract = compiled(body, header=header)
    meter = Meter(steps_max)
    result = contract.invoke(FakeCtx(), "m", list(args), meter)
    return result, meter.used


def outcome(body: str, *args: Any, steps_max: int = 1_000_000) -> tuple[str, Any, int]:
    """Like run, but any exception becomes (its type name, its message, steps used)."""
    contract = compiled(body)
    meter = Meter(steps_max)
    try:
        result = contract.invoke(FakeCtx(), "m", list(args), meter)
    except BaseException as exc:
        return type(exc).__name__, str(exc), meter.used
    return "ok", result, meter.used
