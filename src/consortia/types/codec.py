"""The canonical byte encoding: msgpack of array-like structs, dict keys sorted.

Everything hashed or signed goes through `encode`. `decode_canonical` refuses bytes that
decode but would not re-encode to themselves, so one value has exactly one encoding and
one id. Contract values are plain data: None, bool, int, str, bytes, lists and str-keyed
dicts; floats are refused because they are not exact.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

# 64-bit signed range keeps msgpack's integer encoding unique and portable.
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
VALUE_DEPTH_MAX = 32

_encoder = msgspec.msgpack.Encoder(order="deterministic")


class CodecError(ValueError):
    """Bytes that are not the canonical encoding of the expected type."""


# The encoder's own method, not a wrapper around it: one Python call less per encoding,
# and the hot paths encode several values per transaction.
encode = _encoder.encode


# One decoder per target type: msgspec.msgpack.decode(data, type=...) costs ~5x more per call
# than a prepared Decoder for small structs (it resolves the type every time).
_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}


def decode(data: bytes, typ: type[T]) -> T:
    decoder = _decoders.get(typ)
    if decoder is None:
        decoder = _decoders[typ] = msgspec.msgpack.Decoder(typ)
    try:
        result: T = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(str(exc)) from exc
    return result


def decode_canonical(data: bytes, typ: type[T]) -> T:
    """Decode and insist the bytes are exactly the canonical encoding of the result."""
    # `decode` and `encode` inlined: this runs twice for every transaction admitted.
    decoder = _decoders.get(typ)
    if decoder is None:
        decoder = _decoders[typ] = msgspec.msgpack.Decoder(typ)
    try:
        obj: T = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(str(exc)) from exc
    if _encoder.encode(obj) != data:
        raise CodecError(f"non-canonical encoding of {typ.__name__}")
    return obj


_LEAF_TYPES = (bool, str, bytes)  # a tuple: isinstance with `X | Y` unions is several times slower


def check_value(value: Any, depth: int = 0) -> None:
    """Raise CodecError unless `value` is plain, exact data that may reach state."""
    if depth > VALUE_DEPTH_MAX:
        raise CodecError(f"value nested deeper than {VALUE_DEPTH_MAX}")
    kind = type(value)
    # Exact types first (what decoding and contracts produce), subclasses below.
    if kind is str or kind is bytes or kind is bool or value is None:
        return
    if kind is not int and isinstance(value, _LEAF_TYPES):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise CodecError("integer outside the 64-bit range")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if type(k) is not str and not isinstance(k, str):
                raise CodecError("dict keys must be strings")
            check_value(v, depth + 1)
        return
    if isinstance(value, float):
        raise CodecError("floats are not allowed (not exact); use integers in the smallest unit")
    raise CodecError(f"type {type(value).__name__} is not allowed in values")


def encode_value(value: Any) -> bytes:
    check_value(value)
    return encode(value)


def decode_value(data: bytes) -> Any:
    try:
        value: Any = msgspec.msgpack.decode(data)
    except msgspec.DecodeError as exc:
        raise CodecError(str(exc)) from exc
    check_value(value)
    return value
