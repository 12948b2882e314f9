"""Ethereum transactions: telling them from native envelopes, decoding, sender recovery.

A channel accepts two kinds of transaction bytes. A native envelope is msgpack: an array of
two (first byte 0x92). An Ethereum transaction is what wallets sign: a legacy transaction
is an RLP list (first byte >= 0xc0); a typed transaction (EIP-2718) is one type byte in
0x01..0x7f followed by an RLP list. Supported: legacy with an EIP-155 chain id (type 0),
access-list transactions (EIP-2930, type 1) and fee-market transactions (EIP-1559, type 2).

Decoding is strict: the RLP must be canonical (pyrlp refuses non-minimal length prefixes;
integers are checked here for leading zero bytes), nothing may trail, the signature must
be low-s (EIP-2) and the sender is recovered with libsecp256k1 (coincurve). An Ethereum
transaction's id is keccak256 of its raw bytes: the hash Ethereum clients expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import coincurve
import rlp
from Crypto.Hash import keccak as _keccak

from consortia.crypto.hashing import sha256
from consortia.types.codec import CodecError, decode_canonical
from consortia.types.config import ETH_CHAIN_ID_MAX, ChannelConfig
from consortia.types.core import Envelope

TX_TYPE_LEGACY = 0
TX_TYPE_ACCESS_LIST = 1
TX_TYPE_FEE_MARKET = 2

# Geth refuses pooled transactions over 128 KiB; contract deployment fits well within it.
ETH_TX_BYTES_MAX = 128 * 1024
ADDRESS_BYTES = 20
HASH_BYTES = 32
ACCESS_LIST_ITEMS_MAX = 1024
UINT256_MAX = 2**256 - 1
NONCE_MAX = 2**64 - 2  # EIP-2681: the nonce never reaches 2**64 - 1
GAS_MAX = 2**64 - 1
CHAIN_ID_MAX = 2**64 - 1

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2

_NATIVE_FIRST_BYTE = 0x92  # msgpack fixarray of 2: Envelope(payload, signature)
_ETH_CHAIN_ID_DOMAIN = b"consortia/eth-chain-id/v1\x00"
# Derived chain ids land in [2**20, 2**31): clear of the small ids public networks use,
# and small enough for every wallet (JavaScript numbers, 32-bit v arithmetic).
_DERIVED_CHAIN_ID_LO = 2**20
_DERIVED_CHAIN_ID_SPAN = 2**31 - 2**20

TxKind = Literal["native", "eth"]


class EthTxError(CodecError):
    """Bytes that are not a valid Ethereum transaction for this channel."""

    code = "malformed"


class MalformedEthTx(EthTxError):
    """Not canonical RLP, wrong field count, a field out of range, or trailing bytes."""

    code = "malformed"


class UnsupportedTxType(EthTxError):
    """A typed transaction of a type this platform does not run (blobs, set-code)."""

    code = "unsupported_tx_type"


class BadEthSignature(EthTxError):
    """r or s out of range, s in the upper half (not low-s), or no key recovers from it."""

    code = "bad_signature"


class UnprotectedEthTx(EthTxError):
    """A legacy transaction signed without an EIP-155 chain id: replayable on any chain."""

    code = "unprotected"


class WrongEthChain(EthTxError):
    """Signed for another chain id than the channel's."""

    code = "wrong_chain"


@dataclass(frozen=True, slots=True)
class EthTransaction:
    """A decoded, signature-checked Ethereum transaction.

    Legacy and access-list transactions carry one gas price; it is stored in both fee
    fields, as EIP-1559 normalises them. `to` is None for a contract creation.
    """

    tx_type: int
    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: bytes | None
    value: int
    data: bytes
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    y_parity: int
    r: int
    s: int
    sender: bytes
    hash: bytes

    @property
    def gas_price(self) -> int:
        return self.max_fee_per_gas


def keccak256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def eth_chain_id(chain_id: str, channel: str) -> int:
    """The EIP-155 chain id of a channel, derived from its chain id and name.

    Each channel gets its own id, so a transaction signed for one channel can never be
    replayed on another channel of the same chain.
    """
    digest = sha256(_ETH_CHAIN_ID_DOMAIN + chain_id.encode() + b"\x00" + channel.encode())
    return _DERIVED_CHAIN_ID_LO + int.from_bytes(digest[:8], "big") % _DERIVED_CHAIN_ID_SPAN


def eth_chain_id_of(config: ChannelConfig) -> int:
    """The EIP-155 chain id transactions on this channel are signed for.

    The config's explicit `eth_chain_id`, or, for a config without one (0), the id derived
    from its chain id and channel name.
    """
    return config.eth_chain_id or eth_chain_id(config.chain_id, config.channel)


class BadEthChainId(ValueError):
    """An explicit Ethereum chain id that is not an integer in 1..2**53 - 1."""

    code = "bad_eth_chain_id"


def check_eth_chain_id(value: int) -> int:
    """`value` if it can be a channel's Ethereum chain id; raises BadEthChainId."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ETH_CHAIN_ID_MAX:
        raise BadEthChainId(
            f"Ethereum chain id must be an integer in 1..{ETH_CHAIN_ID_MAX} (2**53 - 1), not {value!r}"
        )
    return value


def address_of_public_key(public_key: coincurve.PublicKey) -> bytes:
    return keccak256(public_key.format(compressed=False)[1:])[-ADDRESS_BYTES:]


def tx_kind(raw: bytes) -> TxKind:
    """Whether `raw` is a native envelope or an Ethereum transaction, by its first byte.

    Raises CodecError for empty bytes or a first byte neither kind starts with.
    """
    if not raw:
        raise CodecError("empty transaction")
    first = raw[0]
    if first == _NATIVE_FIRST_BYTE:
        return "native"
    if first >= 0xC0 or 0x01 <= first <= 0x7F:
        return "eth"
    raise CodecError(f"unknown transaction format (first byte 0x{first:02x})")


def tx_id_of(raw: bytes) -> bytes:
    """The id of a transaction of either kind as it appears in a block.

    Native: sha256 of the envelope's payload. Ethereum: keccak256 of the raw bytes (the
    transaction hash). Checks only the framing of an Ethereum transaction (one RLP list
    spanning the bytes), not its fields or signature. Raises CodecError.
    """
    if tx_kind(raw) == "native":
        return decode_canonical(raw, Envelope).tx_id
    body = raw if raw[0] >= 0xC0 else raw[1:]
    _check_list_framing(body)
    return keccak256(raw)


def decode_eth_transaction(raw: bytes, chain_id: int | None = None) -> EthTransaction:
    """Decode and check a signed Ethereum transaction and recover its sender.

    With `chain_id`, the transaction must be signed for it. Raises MalformedEthTx,
    UnsupportedTxType, UnprotectedEthTx, BadEthSignature or WrongEthChain (all EthTxError,
    a CodecError).
    """
    if not raw:
        raise MalformedEthTx("empty transaction")
    if len(raw) > ETH_TX_BYTES_MAX:
        raise MalformedEthTx(f"transaction of {len(raw)} bytes exceeds {ETH_TX_BYTES_MAX}")
    first = raw[0]
    if first >= 0xC0:
        tx = _decode_legacy(raw)
    elif first == TX_TYPE_ACCESS_LIST:
        tx = _decode_typed(raw, TX_TYPE_ACCESS_LIST)
    elif first == TX_TYPE_FEE_MARKET:
        tx = _decode_typed(raw, TX_TYPE_FEE_MARKET)
    elif 0x01 <= first <= 0x7F:
        raise UnsupportedTxType(f"transaction type {first} is not supported (only 0, 1 and 2)")
    else:
        raise MalformedEthTx(f"not an Ethereum transaction (first byte 0x{first:02x})")
    if chain_id is not None and tx.chain_id != chain_id:
        raise WrongEthChain(f"signed for chain id {tx.chain_id}; this channel is {chain_id}")
    return tx


# ---- decoding ----------------------------------------------------------------------------


def _rlp_items(payload: bytes) -> list[Any]:
    try:
        items = rlp.decode(payload, strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise MalformedEthTx(f"not canonical RLP: {exc}") from exc
    if not isinstance(items, list):
        raise MalformedEthTx("a transaction must be an RLP list")
    return items


def _uint(item: Any, what: str, maximum: int) -> int:
    if not isinstance(item, bytes):
        raise MalformedEthTx(f"{what} must be a byte string")
    if item[:1] == b"\x00":
        raise MalformedEthTx(f"{what} has leading zero bytes")
    value = int.from_bytes(item, "big")
    if value > maximum:
        raise MalformedEthTx(f"{what} is out of range")
    return value


def _bytes(item: Any, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise MalformedEthTx(f"{what} must be a byte string")
    return item


def _to(item: Any) -> bytes | None:
    to = _bytes(item, "to")
    if not to:
        return None
    if len(to) != ADDRESS_BYTES:
        raise MalformedEthTx(f"to must be empty or {ADDRESS_BYTES} bytes")
    return to


def _access_list(item: Any) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
    if not isinstance(item, list) or len(item) > ACCESS_LIST_ITEMS_MAX:
        raise MalformedEthTx(f"access list must be a list of at most {ACCESS_LIST_ITEMS_MAX} entries")
    out: list[tuple[bytes, tuple[bytes, ...]]] = []
    for entry in item:
        if not isinstance(entry, list) or len(entry) != 2:
            raise MalformedEthTx("an access list entry must be [address, [storage keys]]")
        address, keys = entry
        if not isinstance(address, bytes) or len(address) != ADDRESS_BYTES:
            raise MalformedEthTx("an access list address must be 20 bytes")
        if not isinstance(keys, list) or len(keys) > ACCESS_LIST_ITEMS_MAX:
            raise MalformedEthTx("access list storage keys must be a list")
        for key in keys:
            if not isinstance(key, bytes) or len(key) != HASH_BYTES:
                raise MalformedEthTx("an access list storage key must be 32 bytes")
        out.append((address, tuple(keys)))
    return tuple(out)


def _decode_legacy(raw: bytes) -> EthTransaction:
    items = _rlp_items(raw)
    if len(items) != 9:
        raise MalformedEthTx(f"a legacy transaction has 9 fields, not {len(items)}")
    nonce = _uint(items[0], "nonce", NONCE_MAX)
    gas_price = _uint(items[1], "gas price", UINT256_MAX)
    gas = _uint(items[2], "gas", GAS_MAX)
    to = _to(items[3])
    value = _uint(items[4], "value", UINT256_MAX)
    data = _bytes(items[5], "data")
    v = _uint(items[6], "v", UINT256_MAX)
    r = _uint(items[7], "r", UINT256_MAX)
    s = _uint(items[8], "s", UINT256_MAX)
    if v in (27, 28):
        raise UnprotectedEthTx("legacy transaction without an EIP-155 chain id")
    if v < 35:
        raise MalformedEthTx(f"invalid legacy v {v}")
    chain_id, y_parity = (v - 35) // 2, (v - 35) % 2
    if chain_id > CHAIN_ID_MAX:
        raise MalformedEthTx("chain id is out of range")
    # EIP-155: the signed message replaces (v, r, s) by (chain_id, 0, 0).
    unsigned = [*items[:6], _int_bytes(chain_id), b"", b""]
    signing_hash = keccak256(rlp.encode(unsigned))
    sender = _recover(signing_hash, y_parity, r, s)
    return EthTransaction(
        TX_TYPE_LEGACY,
        chain_id,
        nonce,
        gas_price,
        gas_price,
        gas,
        to,
        value,
        data,
        (),
        y_parity,
        r,
        s,
        sender,
        keccak256(raw),
    )


def _decode_typed(raw: bytes, tx_type: int) -> EthTransaction:
    items = _rlp_items(raw[1:])
    fields = 11 if tx_type == TX_TYPE_ACCESS_LIST else 12
    if len(items) != fields:
        raise MalformedEthTx(f"a type {tx_type} transaction has {fields} fields, not {len(items)}")
    chain_id = _uint(items[0], "chain id", CHAIN_ID_MAX)
    nonce = _uint(items[1], "nonce", NONCE_MAX)
    if tx_type == TX_TYPE_ACCESS_LIST:
        priority_fee = max_fee = _uint(items[2], "gas price", UINT256_MAX)
        rest = items[3:]
    else:
        priority_fee = _uint(items[2], "max priority fee per gas", UINT256_MAX)
        max_fee = _uint(items[3], "max fee per gas", UINT256_MAX)
        if priority_fee > max_fee:
            raise MalformedEthTx("max priority fee per gas exceeds max fee per gas")
        rest = items[4:]
    gas = _uint(rest[0], "gas", GAS_MAX)
    to = _to(rest[1])
    value = _uint(rest[2], "value", UINT256_MAX)
    data = _bytes(rest[3], "data")
    access_list = _access_list(rest[4])
    y_parity = _uint(rest[5], "y parity", 1)
    r = _uint(rest[6], "r", UINT256_MAX)
    s = _uint(rest[7], "s", UINT256_MAX)
    signing_hash = keccak256(bytes([tx_type]) + rlp.encode(items[:-3]))
    sender = _recover(signing_hash, y_parity, r, s)
    return EthTransaction(
        tx_type,
        chain_id,
        nonce,
        priority_fee,
        max_fee,
        gas,
        to,
        value,
        data,
        access_list,
        y_parity,
        r,
        s,
        sender,
        keccak256(raw),
    )


def _recover(signing_hash: bytes, y_parity: int, r: int, s: int) -> bytes:
    if not 1 <= r < SECP256K1_N:
        raise BadEthSignature("signature r is out of range")
    if not 1 <= s <= SECP256K1_HALF_N:
        # EIP-2: a high s is the malleated twin of a valid signature; refuse it.
        raise BadEthSignature("signature s is out of range or not low-s (EIP-2)")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, signing_hash, hasher=None)
    except ValueError as exc:
        raise BadEthSignature(f"no public key recovers from the signature: {exc}") from exc
    return address_of_public_key(public_key)


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _check_list_framing(body: bytes) -> None:
    """Raise CodecError unless `body` is exactly one RLP list header plus its payload."""
    if not body or body[0] < 0xC0:
        raise CodecError("an Ethereum transaction must hold an RLP list")
    first = body[0]
    if first <= 0xF7:
        header, length = 1, first - 0xC0
    else:
        size = first - 0xF7
        if len(body) < 1 + size:
            raise CodecError("truncated RLP list header")
        header, length = 1 + size, int.from_bytes(body[1 : 1 + size], "big")
    if header + length != len(body):
        raise CodecError("the RLP list does not span the transaction exactly")


# ---- encoding and signing (clients, tools and tests) --------------------------------------


def sign_eth_transaction(
    private_key: bytes,
    *,
    chain_id: int,
    nonce: int,
    gas: int,
    to: bytes | None,
    value: int = 0,
    data: bytes = b"",
    tx_type: int = TX_TYPE_FEE_MARKET,
    gas_price: int = 0,
    max_priority_fee_per_gas: int = 0,
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...] = (),
) -> bytes:
    """The raw signed transaction, as a wallet would send it (low-s, EIP-155 for legacy).

    For type 2, `gas_price` is the max fee per gas. Raises ValueError for an unknown type.
    """
    key = coincurve.PrivateKey(private_key)
    to_bytes = b"" if to is None else to
    al: list[Any] = [[address, list(keys)] for address, keys in access_list]
    i = _int_bytes
    if tx_type == TX_TYPE_LEGACY:
        body: list[Any] = [i(nonce), i(gas_price), i(gas), to_bytes, i(value), data]
        signing_hash = keccak256(rlp.encode([*body, i(chain_id), b"", b""]))
        r, s, y_parity = _sign(key, signing_hash)
        return bytes(rlp.encode([*body, i(chain_id * 2 + 35 + y_parity), i(r), i(s)]))
    if tx_type == TX_TYPE_ACCESS_LIST:
        body = [i(chain_id), i(nonce), i(gas_price), i(gas), to_bytes, i(value), data, al]
    elif tx_type == TX_TYPE_FEE_MARKET:
        fees = [i(max_priority_fee_per_gas), i(gas_price)]
        body = [i(chain_id), i(nonce), *fees, i(gas), to_bytes, i(value), data, al]
    else:
        raise ValueError(f"unsupported transaction type {tx_type}")
    prefix = bytes([tx_type])
    r, s, y_parity = _sign(key, keccak256(prefix + rlp.encode(body)))
    return prefix + bytes(rlp.encode([*body, i(y_parity), i(r), i(s)]))


def _sign(key: coincurve.PrivateKey, signing_hash: bytes) -> tuple[int, int, int]:
    signature = key.sign_recoverable(signing_hash, hasher=None)  # libsecp256k1 signs low-s
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]


def eth_address(private_key: bytes) -> bytes:
    """The account address of a secp256k1 private key."""
    return address_of_public_key(coincurve.PrivateKey(private_key).public_key)


def checksum_address(address: bytes) -> str:
    """The EIP-55 mixed-case form of a 20-byte address ("0x" + 40 hex digits).

    Written here rather than taken from eth-utils, whose import costs about 2 s.
    """
    if len(address) != ADDRESS_BYTES:
        raise ValueError(f"an address is {ADDRESS_BYTES} bytes, not {len(address)}")
    lower = address.hex()
    nibbles = keccak256(lower.encode()).hex()[: 2 * ADDRESS_BYTES]
    return "0x" + "".join(c.upper() if int(n, 16) >= 8 else c for c, n in zip(lower, nibbles, strict=True))
