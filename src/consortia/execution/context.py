"""What a contract sees as `self.ctx`: its own slice of state, the caller, the block, events.

Every operation charges steps to the transaction's meter, so a contract's cost depends only on
what it does, never on the host. A read-only context (views and queries) refuses writes and
events. Contracts address state with str keys inside their own namespace (see `keys`);
values are plain data (see consortia.types.check_value) stored in the canonical encoding.

Step costs (part of consensus: changing them changes every receipt):
    get       10 + 1 per 32 bytes read
    put       20 + 1 per 32 bytes of key and value
    delete    20
    range     10 + per item 2 + 1 per 32 bytes of key and value
    emit      10 + 1 per 32 bytes of payload
    call      50 (plus whatever the callee spends)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol

import msgspec

from consortia.execution.contract import ContractError
from consortia.execution.errors import KeyLayoutError, StateError
from consortia.execution.keys import (
    CONFIG_KEY,
    SYSTEM_CONTRACTS,
    contract_prefix,
    prefix_end,
)
from consortia.execution.keys import composite_key as _composite_key
from consortia.execution.keys import split_composite_key as _split_composite_key
from consortia.execution.overlay import Overlay
from consortia.execution.sandbox import CallDepthExceeded
from consortia.types import Caller, ChannelConfig, CodecError, Event, Validator, decode, encode, encode_value

STEPS_GET = 10
STEPS_PUT = 20
STEPS_DELETE = 20
STEPS_RANGE = 10
STEPS_RANGE_ITEM = 2
STEPS_EMIT = 10
STEPS_CALL = 50

KEY_CHARS_MAX = 256
VALUE_BYTES_MAX = 256 * 1024
RANGE_ITEMS_MAX = 10_000
EVENTS_MAX = 256
EVENT_NAME_CHARS_MAX = 64
CALL_DEPTH_MAX = 8


class StepMeter(Protocol):
    """The sandbox's Meter as the context uses it; charge raises OutOfSteps past the limit."""

    @property
    def used(self) -> int: ...

    def charge(self, n: int = 1) -> None: ...


class Invocable(Protocol):
    """A callable contract: a compiled user contract or a native system contract."""

    @property
    def methods(self) -> Mapping[str, bool]: ...  # method name -> is a view

    def invoke(self, ctx: Any, method: str, args: list[Any], meter: Any) -> Any: ...


class Runtime(Protocol):
    """The executor's services that contexts need."""

    def resolve(self, name: str, state: Overlay) -> Invocable | None:
        """The contract called `name` as of `state`, or None."""
        ...

    def compile(self, source: str) -> Invocable:
        """Compile (or fetch from cache) user contract source; raises SandboxViolation."""
        ...

    def config_problem(self, config: ChannelConfig) -> str | None:
        """Why identities could not be validated under `config` (an error code), or None."""
        ...

    def validator_problem(self, config: ChannelConfig, validator: Validator, at_ms: int) -> str | None:
        """Why `validator` could not sign blocks under `config` at `at_ms`, or None."""
        ...


class TxEnv:
    """Per-transaction facts and mutable bookkeeping shared by every context of the call tree.

    `signer` is the validated identity as the identity cache holds it: only system contracts
    see it (they read its immutable fields). Contracts get `caller`, a private copy made on
    first use, since the attributes dict of a cached identity must never be shared.
    """

    __slots__ = (
        "_caller",
        "channel",
        "depth",
        "events",
        "height",
        "meter",
        "runtime",
        "signer",
        "timestamp_ms",
        "tx_id",
    )

    def __init__(
        self,
        caller: Caller,
        channel: str,
        height: int,
        timestamp_ms: int,
        tx_id: bytes,
        meter: StepMeter,
        runtime: Runtime,
    ) -> None:
        self.signer = caller
        self._caller: Caller | None = None
        self.channel = channel
        self.height = height
        self.timestamp_ms = timestamp_ms
        self.tx_id = tx_id
        self.meter = meter
        self.runtime = runtime
        self.events: list[Event] = []
        self.depth = 0  # cross-contract calls currently on the stack

    @property
    def caller(self) -> Caller:
        caller = self._caller
        if caller is None:
            s = self.signer
            caller = self._caller = Caller(s.org, s.role, s.subject, s.cert_hash, dict(s.attributes))
        return caller

    @property
    def tx_id_hex(self) -> str:
        return self.tx_id.hex()


# Values in state and events were checked by encode_plain on the way in, so reading them
# back skips check_value (the hot path of every transfer).
_trusted_decoder = msgspec.msgpack.Decoder()
_trusted_decode = _trusted_decoder.decode


def decode_trusted(raw: bytes) -> Any:
    """Decode bytes this layer encoded from checked plain data."""
    return _trusted_decoder.decode(raw)


def plain_copy(value: Any, what: str = "value") -> Any:
    """A deep copy of plain data, so contracts never share mutable objects.

    Raises ContractError if `value` is not plain data.
    """
    return decode_trusted(encode_plain(value, what))


def encode_plain(value: Any, what: str = "value") -> bytes:
    """The canonical encoding of plain data. Raises ContractError for anything else."""
    try:
        return encode_value(value)
    except (CodecError, ValueError) as exc:
        raise ContractError(f"{what} is not plain data: {exc}") from exc


# Every contract's namespace prefix, made once per name (names are few: the system
# contracts and the user contracts committed on the channel).
_namespace = lru_cache(maxsize=1024)(contract_prefix)


def make_context(env: TxEnv, contract: str, overlay: Overlay, read_only: bool) -> Context:
    """The context for running `contract`; system contracts get a SystemContext."""
    if contract in SYSTEM_CONTRACTS:
        return SystemContext(env, contract, overlay, read_only)
    return Context(env, contract, overlay, read_only)


class Context:
    """A contract's view of the world for one invocation."""

    __slots__ = ("_contract", "_env", "_ns", "_overlay", "_read_only")

    def __init__(self, env: TxEnv, contract: str, overlay: Overlay, read_only: bool) -> None:
        self._env = env
        self._contract = contract
        self._overlay = overlay
        self._read_only = read_only
        self._ns = _namespace(contract)

    # -- facts -------------------------------------------------------------------------------

    @property
    def caller(self) -> Caller:
        """Who signed the transaction (the same through cross-contract calls)."""
        return self._env.caller

    @property
    def height(self) -> int:
        return self._env.height

    @property
    def timestamp_ms(self) -> int:
        """The block timestamp; contracts never see the host clock."""
        return self._env.timestamp_ms

    @property
    def tx_id(self) -> str:
        return self._env.tx_id_hex

    @property
    def channel(self) -> str:
        return self._env.channel

    @property
    def contract(self) -> str:
        return self._contract

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- state -------------------------------------------------------------------------------

    def _key(self, key: Any) -> bytes:
        if not isinstance(key, str) or not 1 <= len(key) <= KEY_CHARS_MAX:
            raise ContractError(f"keys must be str of 1..{KEY_CHARS_MAX} characters")
        # `keys.is_composite_key`, inlined: every state access of a token transfer comes here.
        if "\x00" in key and not (len(key) >= 3 and key[0] == key[-1] == "\x00" != key[1]):
            raise ContractError("keys may contain \\x00 only when made by composite_key")
        try:
            return self._ns + key.encode()
        except UnicodeEncodeError as exc:
            raise ContractError("key is not encodable as UTF-8") from exc

    def _bound(self, bound: Any, what: str) -> bytes:
        if not isinstance(bound, str) or len(bound) > 2 * KEY_CHARS_MAX:
            raise ContractError(f"{what} must be a str of at most {2 * KEY_CHARS_MAX} characters")
        try:
            return self._ns + bound.encode()
        except UnicodeEncodeError as exc:
            raise ContractError(f"{what} is not encodable as UTF-8") from exc

    def _writable(self, what: str) -> None:
        if self._read_only:
            raise ContractError(f"{what} is not allowed in a read-only context")

    def get(self, key: str) -> Any:
        """The value stored under `key`, or None. Raises ContractError for a bad key."""
        raw = self._overlay.get(self._key(key))
        if raw is None:
            self._env.meter.charge(STEPS_GET)
            return None
        self._env.meter.charge(STEPS_GET + (len(raw) >> 5))
        return decode_trusted(raw)

    def put(self, key: str, value: Any) -> None:
        """Store plain data under `key`.

        Raises ContractError in a read-only context, for a bad key, a value that is not plain
        data (floats included) or one larger than VALUE_BYTES_MAX encoded.
        """
        self._writable("put")
        bkey = self._key(key)
        raw = encode_plain(value)
        if len(raw) > VALUE_BYTES_MAX:
            raise ContractError(f"value of {len(raw)} bytes exceeds {VALUE_BYTES_MAX}")
        self._env.meter.charge(STEPS_PUT + ((len(bkey) + len(raw)) >> 5))
        self._overlay.put(bkey, raw)

    def delete(self, key: str) -> None:
        """Remove `key` (a no-op if absent). Raises ContractError if read-only or a bad key."""
        self._writable("delete")
        bkey = self._key(key)
        self._env.meter.charge(STEPS_DELETE)
        self._overlay.delete(bkey)

    def range(self, start: str, end: str, limit: int = RANGE_ITEMS_MAX) -> list[tuple[str, Any]]:
        """Up to `limit` (key, value) pairs with start <= key < end, in key order.

        An empty `start` means the namespace's first key, an empty `end` its last. To page,
        call again with start = last key + "\\x00". Raises ContractError for bad bounds or
        a limit outside 1..RANGE_ITEMS_MAX.
        """
        lo = self._bound(start, "start")
        hi = self._bound(end, "end") if end != "" else prefix_end(self._ns)
        return self._scan(lo, hi, limit)

    def prefix(self, prefix: str, limit: int = RANGE_ITEMS_MAX) -> list[tuple[str, Any]]:
        """Up to `limit` (key, value) pairs whose key starts with `prefix`, in key order.

        Works with partial composite keys. Raises ContractError for a bad prefix or limit.
        """
        lo = self._bound(prefix, "prefix")
        return self._scan(lo, prefix_end(lo), limit)

    def _scan(self, lo: bytes, hi: bytes | None, limit: Any) -> list[tuple[str, Any]]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= RANGE_ITEMS_MAX:
            raise ContractError(f"limit must be an int in 1..{RANGE_ITEMS_MAX}")
        meter = self._env.meter
        meter.charge(STEPS_RANGE)
        cut = len(self._ns)
        out: list[tuple[str, Any]] = []
        if hi is not None and hi <= lo:
            return out
        for key, raw in self._overlay.scan(lo, hi):
            meter.charge(STEPS_RANGE_ITEM + ((len(key) + len(raw)) >> 5))
            out.append((key[cut:].decode(), decode_trusted(raw)))
            if len(out) >= limit:
                break
        return out

    # -- keys --------------------------------------------------------------------------------

    def composite_key(self, object_type: str, *attrs: str) -> str:
        """Raises ContractError for an empty type or a part that is not a str or holds \\x00."""
        try:
            return _composite_key(object_type, *attrs)
        except KeyLayoutError as exc:
            raise ContractError(str(exc)) from exc

    def split_composite_key(self, key: str) -> tuple[str, list[str]]:
        """Raises ContractError if `key` was not made by composite_key."""
        try:
            return _split_composite_key(key)
        except KeyLayoutError as exc:
            raise ContractError(str(exc)) from exc

    # -- events and calls --------------------------------------------------------------------

    def emit(self, name: str, payload: Any = None) -> None:
        """Record an event in the receipt (dropped if the transaction or this call fails).

        Raises ContractError if read-only, for a bad name, non-plain payload or too many events.
        """
        self._writable("emit")
        if not isinstance(name, str) or not 1 <= len(name) <= EVENT_NAME_CHARS_MAX:
            raise ContractError(f"event names must be str of 1..{EVENT_NAME_CHARS_MAX} characters")
        env = self._env
        if len(env.events) >= EVENTS_MAX:
            raise ContractError(f"more than {EVENTS_MAX} events")
        raw = encode_plain(payload, "event payload")
        if len(raw) > VALUE_BYTES_MAX:
            raise ContractError(f"event payload of {len(raw)} bytes exceeds {VALUE_BYTES_MAX}")
        env.meter.charge(STEPS_EMIT + (len(raw) >> 5))
        env.events.append(Event(self._contract, name, decode_trusted(raw)))

    def call(self, contract: str, method: str, *args: Any) -> Any:
        """Run `contract.method(*args)` as the same caller, in a child overlay.

        If the callee fails, its writes and events are rolled back and the error re-raised.
        A read-only context may only call views; a view always runs read-only.
        Raises ContractError (unknown contract or method, non-plain arguments or result),
        CallDepthExceeded past CALL_DEPTH_MAX nested calls, and whatever the callee raises.
        """
        env = self._env
        env.meter.charge(STEPS_CALL)
        if not isinstance(contract, str) or not isinstance(method, str):
            raise ContractError("contract and method must be str")
        if env.depth >= CALL_DEPTH_MAX:
            raise CallDepthExceeded(f"more than {CALL_DEPTH_MAX} nested calls")
        target = env.runtime.resolve(contract, self._overlay)
        if target is None:
            raise ContractError(f"unknown contract {contract!r}")
        is_view = target.methods.get(method)
        if is_view is None:
            raise ContractError(f"unknown method {contract}.{method}")
        if self._read_only and not is_view:
            raise ContractError(f"{contract}.{method} writes state; a read-only context may only call views")
        call_args = plain_copy(list(args), "arguments")
        read_only = self._read_only or is_view
        overlay = self._overlay if read_only else self._overlay.child()
        marker = len(env.events)
        env.depth += 1
        try:
            result = target.invoke(
                make_context(env, contract, overlay, read_only), method, call_args, env.meter
            )
            result = plain_copy(result, "result")
        except BaseException:
            if overlay is not self._overlay:
                overlay.discard()
            del env.events[marker:]
            raise
        finally:
            env.depth -= 1
        if overlay is not self._overlay:
            overlay.merge_into_parent()
        return result


class SystemContext(Context):
    """A context for trusted system contracts: adds raw access to the `s/` records.

    Only `make_context` creates these, and only for system contract names, so user
    contracts never hold one.
    """

    __slots__ = ()

    @property
    def env(self) -> TxEnv:
        return self._env

    @property
    def caller(self) -> Caller:
        """Who signed the transaction: the validated identity itself, not a copy (system
        contracts only read its org, role and subject)."""
        return self._env.signer

    @property
    def direct(self) -> bool:
        """True when the transaction itself called this contract (not another contract)."""
        return self._env.depth == 0

    def state_key(self, key: str) -> bytes:
        """The state key `get` and `put` use for `key`, checked as they check it, to read and
        write it with `get_at` and `put_checked` without checking it again.

        Raises ContractError for a bad key.
        """
        return self._key(key)

    def get_at(self, state_key: bytes) -> Any:
        """`get` for a key made by `state_key`: the same value and steps."""
        raw = self._overlay.get(state_key)
        if raw is None:
            self._env.meter.charge(STEPS_GET)
            return None
        self._env.meter.charge(STEPS_GET + (len(raw) >> 5))
        return _trusted_decode(raw)

    def put_checked(self, state_key: bytes, value: Any) -> None:
        """`put` for a key made by `state_key` and a value the system contract built from
        data it already checked (exact str, bytes, bool, None, ints within 64 bits, lists
        and str-keyed dicts of them): the same bytes, steps and errors as `put`, without
        checking either again.

        Raises ContractError in a read-only context or for an oversized value.
        """
        if self._read_only:
            self._writable("put")
        raw = encode(value)
        if len(raw) > VALUE_BYTES_MAX:
            raise ContractError(f"value of {len(raw)} bytes exceeds {VALUE_BYTES_MAX}")
        self._env.meter.charge(STEPS_PUT + ((len(state_key) + len(raw)) >> 5))
        self._overlay.put(state_key, raw)

    def emit_checked(self, name: str, payload: dict[str, Any]) -> None:
        """`emit` for a payload the system contract built from data it already checked (as
        for `put_checked`), under an event name that is a valid literal: the same event,
        steps and errors as `emit`, without checking and copying the payload.

        The receipt keeps `payload` itself, so the caller hands it over (never mutates it
        afterwards) and lists its keys in sorted order, as decoding its encoding would.
        Raises ContractError if read-only, too many events or an oversized payload.
        """
        if self._read_only:
            self._writable("emit")
        env = self._env
        if len(env.events) >= EVENTS_MAX:
            raise ContractError(f"more than {EVENTS_MAX} events")
        raw = encode(payload)
        if len(raw) > VALUE_BYTES_MAX:
            raise ContractError(f"event payload of {len(raw)} bytes exceeds {VALUE_BYTES_MAX}")
        env.meter.charge(STEPS_EMIT + (len(raw) >> 5))
        env.events.append(Event(self._contract, name, payload))

    def get_record(self, key: bytes) -> bytes | None:
        raw = self._overlay.get(key)
        self._env.meter.charge(STEPS_GET + (len(raw) >> 5 if raw is not None else 0))
        return raw

    def put_record(self, key: bytes, value: bytes) -> None:
        """Raises ContractError in a read-only context."""
        self._writable("put")
        self._env.meter.charge(STEPS_PUT + ((len(key) + len(value)) >> 5))
        self._overlay.put(key, value)

    def delete_record(self, key: bytes) -> None:
        """Raises ContractError in a read-only context."""
        self._writable("delete")
        self._env.meter.charge(STEPS_PUT + (len(key) >> 5))
        self._overlay.delete(key)

    def scan_records(self, prefix: bytes, limit: int = RANGE_ITEMS_MAX) -> list[tuple[bytes, bytes]]:
        meter = self._env.meter
        meter.charge(STEPS_RANGE)
        out: list[tuple[bytes, bytes]] = []
        for key, raw in self._overlay.scan(prefix, prefix_end(prefix)):
            meter.charge(STEPS_RANGE_ITEM + ((len(key) + len(raw)) >> 5))
            out.append((key, raw))
            if len(out) >= limit:
                break
        return out

    def channel_config(self) -> ChannelConfig:
        """The channel config as of this point in the block. Raises StateError if absent."""
        raw = self.get_record(CONFIG_KEY)
        if raw is None:
            raise StateError("state holds no channel config")
        return decode(raw, ChannelConfig)
