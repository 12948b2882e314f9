"""The state key layout: disjoint namespaces, prefix-friendly composite keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.execution.errors import KeyLayoutError
from consortia.execution.keys import (
    composite_key,
    contract_key,
    contract_prefix,
    is_contract_name,
    lifecycle_approval_key,
    lifecycle_approval_prefix,
    prefix_end,
    split_composite_key,
)


def test_contract_namespaces_are_disjoint() -> None:
    assert contract_key("tok", "en") != contract_key("token", "")
    assert not contract_key("token2", "x").startswith(contract_prefix("token"))
    with pytest.raises(KeyLayoutError):
        contract_prefix("a\x00b")


def test_prefix_end() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff") is None
    assert prefix_end(b"") is None


@given(prefix=st.binary(max_size=4), key=st.binary(max_size=6))
def test_prefix_end_bounds_exactly_the_prefixed_keys(prefix: bytes, key: bytes) -> None:
    end = prefix_end(prefix)
    inside = key >= prefix and (end is None or key < end)
    assert inside == key.startswith(prefix)


def test_partial_composite_keys_prefix_only_their_extensions() -> None:
    full = composite_key("balance", "bank1/alice")
    assert full.startswith(composite_key("balance"))
    assert not composite_key("balance", "bank1/alice2").startswith(full)
    assert split_composite_key(full) == ("balance", ["bank1/alice"])
    with pytest.raises(KeyLayoutError):
        composite_key("")
    with pytest.raises(KeyLayoutError):
        split_composite_key("balance")


def test_contract_names() -> None:
    assert is_contract_name("a")
    assert is_contract_name("my_contract_2")
    for bad in ("", "A", "_a", "2a", "a" * 33, "token", "config", "lifecycle", "a-b"):
        assert not is_contract_name(bad), bad
    assert lifecycle_approval_key("cc", "1", "org1").startswith(lifecycle_approval_prefix("cc", "1"))
    assert not lifecycle_approval_key("cc", "10", "org1").startswith(lifecycle_approval_prefix("cc", "1"))
    with pytest.raises(KeyLayoutError):
        lifecycle_approval_key("Bad", "1", "org1")
