"""Where the EVM keeps accounts, code, storage and its allowlist in the channel state.

Flat keys, one record per account, per code blob and per storage slot, so every EVM state
change is an ordinary state write (covered by the state root, provable, exported, synced)
and any single storage slot can be proven to a light client:

    e/a/<address:20>                   an account: canonical msgpack [nonce, balance, code hash]
                                       (balance as minimal big-endian bytes; code hash empty
                                       for an account without code); absent = empty account
    e/c/<keccak256(code):32>           contract code (content-addressed, shared, never deleted)
    e/s/<address:20><slot:32>          a storage slot: its value as minimal big-endian bytes;
                                       absent = zero
    s/evm/allow/<address:20>           an account allowed to send transactions: canonical
                                       msgpack {"org": <org name>}

Fixed-width binary addresses and slots keep one account's slots contiguous and ordered
(a prefix scan wipes them), and no key is a prefix of another kind's key. An account that is
empty in the EIP-161 sense (nonce 0, balance 0, no code) is not stored: post-EIP-161
Ethereum treats such an account as absent in every observable way.

Nothing here imports the EVM interpreter, so readers (JSON-RPC, explorer) stay light.
"""

from __future__ import annotations

import msgspec

from consortia.execution.errors import ExecutionError
from consortia.ledger.interface import StateReader
from consortia.types import CodecError, decode_canonical, encode

ACCOUNT_PREFIX = b"e/a/"
CODE_PREFIX = b"e/c/"
STORAGE_PREFIX = b"e/s/"
ALLOW_PREFIX = b"s/evm/allow/"

ADDRESS_BYTES = 20
WORD_BYTES = 32
# keccak256(b""): the code hash Ethereum reports for an account without code.
EMPTY_CODE_HASH = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


class EvmStateError(ExecutionError):
    """An EVM record in state is malformed, or an address or slot has the wrong size."""


class Account(msgspec.Struct, array_like=True, frozen=True):
    nonce: int = 0
    balance: bytes = b""  # minimal big-endian; b"" = 0
    code_hash: bytes = b""  # b"" = no code (EMPTY_CODE_HASH)

    @property
    def balance_int(self) -> int:
        return int.from_bytes(self.balance, "big")

    @property
    def is_empty(self) -> bool:
        return self.nonce == 0 and not self.balance and not self.code_hash


EMPTY_ACCOUNT = Account()


def _check_address(address: bytes) -> bytes:
    if len(address) != ADDRESS_BYTES:
        raise EvmStateError(f"an address is {ADDRESS_BYTES} bytes, not {len(address)}")
    return address


def account_key(address: bytes) -> bytes:
    """Raises EvmStateError for an address that is not 20 bytes."""
    return ACCOUNT_PREFIX + _check_address(address)


def code_key(code_hash: bytes) -> bytes:
    return CODE_PREFIX + code_hash


def storage_prefix(address: bytes) -> bytes:
    """The prefix of every storage slot of `address`. Raises EvmStateError."""
    return STORAGE_PREFIX + _check_address(address)


def storage_key(address: bytes, slot: int) -> bytes:
    """Raises EvmStateError for a bad address or a slot outside 0..2**256-1."""
    if not 0 <= slot < 2**256:
        raise EvmStateError("a storage slot is a 256-bit unsigned integer")
    return storage_prefix(address) + slot.to_bytes(WORD_BYTES, "big")


def allow_key(address: bytes) -> bytes:
    """Raises EvmStateError for an address that is not 20 bytes."""
    return ALLOW_PREFIX + _check_address(address)


def int_bytes(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative int (0 -> b"")."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def encode_account(account: Account) -> bytes:
    return encode(account)


def decode_account(raw: bytes) -> Account:
    """Raises EvmStateError for a record that is not a canonical Account."""
    try:
        account = decode_canonical(raw, Account)
    except CodecError as exc:
        raise EvmStateError(f"malformed EVM account record: {exc}") from exc
    if account.balance[:1] == b"\x00" or len(account.code_hash) not in (0, WORD_BYTES):
        raise EvmStateError("malformed EVM account record")
    return account


# ---- readers (JSON-RPC and explorer use these; no interpreter needed) ------------------------


def read_account(state: StateReader, address: bytes) -> Account:
    """The account at `address` (EMPTY_ACCOUNT if none). Raises EvmStateError."""
    raw = state.get(account_key(address))
    return EMPTY_ACCOUNT if raw is None else decode_account(raw)


def read_code(state: StateReader, address: bytes) -> bytes:
    """The code at `address` (b"" if none). Raises EvmStateError if the code is missing."""
    code_hash = read_account(state, address).code_hash
    if not code_hash:
        return b""
    code = state.get(code_key(code_hash))
    if code is None:
        raise EvmStateError(f"code {code_hash.hex()} is missing from state")
    return code


def read_storage(state: StateReader, address: bytes, slot: int) -> int:
    """The value of a storage slot (0 if unset). Raises EvmStateError."""
    raw = state.get(storage_key(address, slot))
    return 0 if raw is None else int.from_bytes(raw, "big")
