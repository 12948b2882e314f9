from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.types import (
    Block,
    CodecError,
    Envelope,
    Header,
    Transaction,
    decode,
    decode_canonical,
    decode_envelope,
    decode_value,
    encode,
    encode_value,
)

values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def make_tx(args: list[Any]) -> Transaction:
    return Transaction("chain", "main", b"n" * 16, b"cert", "token", "transfer", args)


@given(st.lists(values, max_size=5))
def test_transaction_round_trip_is_canonical(args: list[Any]) -> None:
    tx = make_tx(args)
    raw = encode(tx)
    back = decode_canonical(raw, Transaction)
    assert back == tx
    assert encode(back) == raw
    env = Envelope(raw, b"s" * 64)
    e2, t2 = decode_envelope(encode(env))
    assert e2.tx_id == env.tx_id and t2 == tx


@given(st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), min_size=2, max_size=6))
def test_dict_key_order_does_not_change_bytes(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert encode_value(d) == encode_value(reversed_d)
    assert decode_value(encode_value(d)) == d


def test_non_canonical_bytes_refused() -> None:
    import msgspec

    tx = make_tx([{"a": 1, "b": 2}])
    # The same transaction with its dict keys written out of order decodes but is not canonical.
    raw = msgspec.msgpack.encode(
        ["chain", "main", b"n" * 16, b"cert", "token", "transfer", [{"b": 2, "a": 1}], 0]
    )
    assert decode(raw, Transaction) == tx
    with pytest.raises(CodecError):
        decode_canonical(raw, Transaction)


@pytest.mark.parametrize("bad", [1.5, {1: "x"}, {"s"}, 2**70, object()])
def test_values_refuse_inexact_or_foreign_data(bad: Any) -> None:
    with pytest.raises(CodecError):
        encode_value(bad)


@pytest.mark.parametrize(
    "raw", [b"", b"\xc1", b"\x93\x01\x02", encode(["x"] * 9), encode(Envelope(b"junk", b""))]
)
def test_malformed_envelopes(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_envelope(raw)


def test_shape_limits() -> None:
    for tx in (
        Transaction("c", "m", b"short", b"c", "token", "x", []),
        Transaction("c", "m", b"n" * 16, b"c", "", "x", []),
        Transaction("c", "m", b"n" * 16, b"c", "t", "x", [0] * 65),
        Transaction("c", "m", b"n" * 16, b"c", "t", "x", [], expiry_height=-1),
    ):
        with pytest.raises(CodecError):
            decode_envelope(encode(Envelope(encode(tx), b"")))


def test_header_hash_commits_to_every_field() -> None:
    h = Header("c", "main", 1, b"p" * 32, 5, "n", b"t" * 32, b"s" * 32, b"r" * 32, 0)
    block = Block(h, [])
    assert decode(encode(block), Block) == block
    import msgspec

    for field in ("height", "timestamp_ms", "tx_count"):
        assert msgspec.structs.replace(h, **{field: 99}).hash != h.hash
    assert msgspec.structs.replace(h, state_root=b"x" * 32).hash != h.hash


def _shape_error(check: Any) -> str | None:
    try:
        check()
    except CodecError as exc:
        return str(exc)
    return None


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


odd_values: st.SearchStrategy[Any] = st.recursive(
    values
    | st.floats(allow_nan=False)
    | st.integers(-(2**66), 2**66)
    | st.sampled_from([2**64 - 1, 2**64, -(2**63), -(2**63) - 1, _nested(31), _nested(32), _nested(33)]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.integers(0, 3) | st.text(max_size=3), inner)
    ),
    max_leaves=8,
)


@given(st.lists(odd_values, max_size=6))
def test_shape_check_of_arguments_is_the_value_check(args: list[Any]) -> None:
    """validate_shape's inline argument check answers exactly as check_value(args)."""
    from consortia.types import check_value

    tx = make_tx(args)
    assert _shape_error(tx.validate_shape) == _shape_error(lambda: check_value(args))
