"""Decoding signed Ethereum transactions: vectors, low-s, chain ids, canonical RLP, kinds."""

from __future__ import annotations

import pytest
import rlp
from eth.vm.forks.cancun import CancunVM
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.crypto import sha256
from consortia.types import CodecError, Envelope, Transaction, encode
from consortia.types.eth import (
    SECP256K1_N,
    TX_TYPE_ACCESS_LIST,
    TX_TYPE_FEE_MARKET,
    TX_TYPE_LEGACY,
    BadEthSignature,
    MalformedEthTx,
    UnprotectedEthTx,
    UnsupportedTxType,
    WrongEthChain,
    decode_eth_transaction,
    eth_address,
    eth_chain_id,
    keccak256,
    sign_eth_transaction,
    tx_id_of,
    tx_kind,
)

from .evm_kit import ALICE, ALICE_KEY

# EIP-155's own example: nonce 9, 20 gwei, 21000 gas, 1 ether to 0x3535..35, chain id 1,
# signed with the key 0x4646..46.
EIP155_RAW = bytes.fromhex(
    "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000"
    "8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f76"
    "1aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
)
EIP155_SENDER = bytes.fromhex("9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f")
CHAIN = 1337
TO = bytes.fromhex("3535353535353535353535353535353535353535")
ACCESS = ((bytes(range(20)), (b"\x01" * 32, b"\x02" * 32)),)


def test_eip155_example_vector() -> None:
    tx = decode_eth_transaction(EIP155_RAW, chain_id=1)
    assert tx.sender == EIP155_SENDER == eth_address(b"\x46" * 32)
    assert (tx.tx_type, tx.chain_id, tx.nonce, tx.gas_price, tx.gas) == (0, 1, 9, 20 * 10**9, 21_000)
    assert (tx.to, tx.value, tx.data) == (TO, 10**18, b"")
    assert tx.hash == keccak256(EIP155_RAW) == tx_id_of(EIP155_RAW)


@pytest.mark.parametrize("tx_type", [TX_TYPE_LEGACY, TX_TYPE_ACCESS_LIST, TX_TYPE_FEE_MARKET])
def test_signed_transactions_agree_with_py_evm(tx_type: int) -> None:
    raw = sign_eth_transaction(
        ALICE_KEY,
        chain_id=CHAIN,
        nonce=7,
        gas=50_000,
        to=TO,
        value=12345,
        data=b"\x00\x01payload",
        tx_type=tx_type,
        gas_price=3,
        max_priority_fee_per_gas=2 if tx_type == TX_TYPE_FEE_MARKET else 0,
        access_list=ACCESS if tx_type != TX_TYPE_LEGACY else (),
    )
    ours = decode_eth_transaction(raw, chain_id=CHAIN)
    theirs = CancunVM.get_transaction_builder().decode(raw)
    assert ours.sender == theirs.sender == ALICE
    assert ours.hash == theirs.hash
    assert (ours.tx_type, ours.nonce, ours.gas, ours.value, ours.data) == (
        tx_type,
        7,
        50_000,
        12345,
        theirs.data,
    )
    assert ours.max_fee_per_gas == 3
    assert ours.access_list == (ACCESS if tx_type != TX_TYPE_LEGACY else ())


def test_contract_creation_has_no_recipient() -> None:
    raw = sign_eth_transaction(ALICE_KEY, chain_id=CHAIN, nonce=0, gas=100_000, to=None, data=b"\x60\x00")
    assert decode_eth_transaction(raw).to is None


def _with_high_s(raw: bytes) -> bytes:
    """The same typed transaction with its malleated twin signature (n - s, flipped parity)."""
    items = rlp.decode(raw[1:])
    s = int.from_bytes(items[-1], "big")
    parity = int.from_bytes(items[-3], "big")
    items[-3] = b"" if parity else b"\x01"
    items[-1] = (SECP256K1_N - s).to_bytes(32, "big")
    return raw[:1] + rlp.encode(items)


def test_high_s_signature_is_refused_although_it_recovers_the_same_key() -> None:
    raw = sign_eth_transaction(ALICE_KEY, chain_id=CHAIN, nonce=1, gas=21_000, to=TO)
    assert decode_eth_transaction(raw).sender == ALICE
    with pytest.raises(BadEthSignature) as info:
        decode_eth_transaction(_with_high_s(raw))
    assert info.value.code == "bad_signature"


def test_wrong_chain_id_is_refused() -> None:
    raw = sign_eth_transaction(ALICE_KEY, chain_id=CHAIN + 1, nonce=0, gas=21_000, to=TO)
    with pytest.raises(WrongEthChain) as info:
        decode_eth_transaction(raw, chain_id=CHAIN)
    assert info.value.code == "wrong_chain"
    legacy = sign_eth_transaction(ALICE_KEY, chain_id=5, nonce=0, gas=21_000, to=TO, tx_type=TX_TYPE_LEGACY)
    with pytest.raises(WrongEthChain):
        decode_eth_transaction(legacy, chain_id=CHAIN)


def test_legacy_without_chain_id_is_refused() -> None:
    items = rlp.decode(EIP155_RAW)
    items[6] = b"\x1b"  # v = 27: pre-EIP-155, valid on every chain
    with pytest.raises(UnprotectedEthTx):
        decode_eth_transaction(rlp.encode(items))


def test_tampered_payload_recovers_another_sender() -> None:
    items = rlp.decode(EIP155_RAW)
    items[4] = (2 * 10**18).to_bytes(8, "big")  # more value, same signature
    assert decode_eth_transaction(rlp.encode(items)).sender != EIP155_SENDER


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (EIP155_RAW + b"\x00", MalformedEthTx),  # trailing byte
        (b"\x02" + rlp.encode([b"\x01"] * 5), MalformedEthTx),  # wrong field count
        (b"\x03" + rlp.encode([]), UnsupportedTxType),  # blob transaction
        (b"\x04" + rlp.encode([]), UnsupportedTxType),  # set-code transaction
        (b"", MalformedEthTx),
        (b"\x02\x80", MalformedEthTx),  # not a list
    ],
)
def test_malformed_bytes_are_refused(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_eth_transaction(raw)


def test_integers_with_leading_zeros_are_not_canonical() -> None:
    items = rlp.decode(EIP155_RAW)
    items[0] = b"\x00\x09"  # nonce 9 with a leading zero byte
    with pytest.raises(MalformedEthTx, match="leading zero"):
        decode_eth_transaction(rlp.encode(items))


def test_out_of_range_r_is_refused() -> None:
    items = rlp.decode(EIP155_RAW)
    items[7] = SECP256K1_N.to_bytes(32, "big")
    with pytest.raises(BadEthSignature):
        decode_eth_transaction(rlp.encode(items))


def test_kinds_and_ids() -> None:
    tx = Transaction("c", "main", b"12345678", b"cert", "token", "transfer", ["x", 1])
    envelope = encode(Envelope(encode(tx), b"sig"))
    assert tx_kind(envelope) == "native"
    assert tx_id_of(envelope) == sha256(encode(tx))
    typed = sign_eth_transaction(ALICE_KEY, chain_id=CHAIN, nonce=0, gas=21_000, to=TO)
    assert tx_kind(EIP155_RAW) == tx_kind(typed) == "eth"
    assert tx_id_of(typed) == keccak256(typed)
    for junk in (b"", b"\x80abc", b"\x00", b"\x91\x01"):
        with pytest.raises(CodecError):
            tx_kind(junk)
    for unframed in (b"\x01garbage", b"\x02\xc5\x01", EIP155_RAW[:-1]):
        with pytest.raises(CodecError):
            tx_id_of(unframed)


def test_each_channel_has_its_own_chain_id() -> None:
    ids = {eth_chain_id("chain", ch) for ch in ("a", "b", "c")} | {eth_chain_id("other", "a")}
    assert len(ids) == 4
    assert all(2**20 <= i < 2**31 for i in ids)
    assert eth_chain_id("chain", "a") == eth_chain_id("chain", "a")


@settings(max_examples=40, deadline=None)
@given(
    tx_type=st.sampled_from([TX_TYPE_LEGACY, TX_TYPE_ACCESS_LIST, TX_TYPE_FEE_MARKET]),
    key=st.integers(1, SECP256K1_N - 1),
    chain_id=st.integers(1, 2**40),
    nonce=st.integers(0, 2**64 - 2),
    gas=st.integers(0, 2**64 - 1),
    value=st.integers(0, 2**256 - 1),
    data=st.binary(max_size=200),
    create=st.booleans(),
)
def test_sign_then_decode_round_trips(
    tx_type: int, key: int, chain_id: int, nonce: int, gas: int, value: int, data: bytes, create: bool
) -> None:
    secret = key.to_bytes(32, "big")
    raw = sign_eth_transaction(
        secret,
        chain_id=chain_id,
        nonce=nonce,
        gas=gas,
        to=None if create else TO,
        value=value,
        data=data,
        tx_type=tx_type,
        gas_price=5,
    )
    tx = decode_eth_transaction(raw, chain_id=chain_id)
    assert tx.sender == eth_address(secret)
    assert (tx.tx_type, tx.nonce, tx.gas, tx.value, tx.data) == (tx_type, nonce, gas, value, data)
    assert tx.to == (None if create else TO)
    assert tx.s <= SECP256K1_N // 2
