"""py-evm's account database, backed by our overlays instead of a Merkle Patricia trie.

py-evm reads and writes accounts, code and storage through an `AccountDatabaseAPI`; this
one keeps them as flat records (see `layout`) in an Overlay, so each write the EVM makes is
an ordinary state write of the transaction. py-evm's journal maps onto nested overlays: a
checkpoint (a message call) is a child overlay, reverting a call discards it, and a
successful call merges it into its parent. The warm sets of EIP-2929 are journaled the
same way. The original value of a slot (EIP-2200's gas rules) is read from the state
below the transaction's overlay, which is the state when the transaction started.

The Ethereum state root is never computed: the channel's sparse Merkle tree over these
records is the commitment (make_state_root returns a constant).
"""

from __future__ import annotations

from typing import Any

from eth.abc import AccountDatabaseAPI
from eth.db.journal import get_next_checkpoint
from eth.typing import JournalDBCheckpoint
from eth_hash.auto import keccak
from eth_typing import Hash32

from consortia.execution.evm.layout import (
    EMPTY_ACCOUNT,
    EMPTY_CODE_HASH,
    Account,
    EvmStateError,
    account_key,
    code_key,
    decode_account,
    encode_account,
    int_bytes,
    storage_key,
    storage_prefix,
)
from consortia.execution.keys import prefix_end
from consortia.execution.overlay import Overlay
from consortia.ledger.interface import StateReader

_NO_ROOT = Hash32(b"\x00" * 32)


class OverlayAccountDB(AccountDatabaseAPI):
    """Accounts, code and storage of one transaction, written into `tx_overlay`.

    The caller owns `tx_overlay`: it merges it (keep the transaction's effects) or discards
    it. Raises EvmStateError when a stored record is malformed.
    """

    def __init__(self, tx_overlay: Overlay, state_root: Hash32 = _NO_ROOT) -> None:
        self._origin: StateReader = tx_overlay.base
        self._layers: list[Overlay] = [tx_overlay]
        self._warm: list[set[bytes]] = [set()]
        self._checkpoints: list[int] = []  # checkpoint of layer i + 1

    # ---- records -------------------------------------------------------------------------

    @property
    def _top(self) -> Overlay:
        return self._layers[-1]

    def _store(self, key: bytes, value: bytes | None) -> None:
        # Skip writes that change nothing: they would still reach history and the tree.
        top = self._top
        if top.get(key) == value:
            return
        if value is None:
            top.delete(key)
        else:
            top.put(key, value)

    def _account(self, address: bytes) -> Account:
        raw = self._top.get(account_key(address))
        return EMPTY_ACCOUNT if raw is None else decode_account(raw)

    def _set_account(self, address: bytes, account: Account) -> None:
        self._store(account_key(address), None if account.is_empty else encode_account(account))

    # ---- storage -------------------------------------------------------------------------

    def get_storage(self, address: bytes, slot: int, from_journal: bool = True) -> int:
        source: StateReader = self._top if from_journal else self._origin
        raw = source.get(storage_key(address, slot))
        return 0 if raw is None else int.from_bytes(raw, "big")

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        self._store(storage_key(address, slot), int_bytes(value) if value else None)

    def delete_storage(self, address: bytes) -> None:
        prefix = storage_prefix(address)
        top = self._top
        for key in [k for k, _ in top.scan(prefix, prefix_end(prefix))]:
            top.delete(key)

    def is_storage_warm(self, address: bytes, slot: int) -> bool:
        return self.is_address_warm(address + slot.to_bytes(32, "big"))

    def mark_storage_warm(self, address: bytes, slot: int) -> None:
        self._warm[-1].add(address + slot.to_bytes(32, "big"))

    # ---- balance and nonce ---------------------------------------------------------------

    def get_balance(self, address: bytes) -> int:
        return self._account(address).balance_int

    def set_balance(self, address: bytes, balance: int) -> None:
        if not 0 <= balance < 2**256:
            raise EvmStateError("a balance is a 256-bit unsigned integer")
        account = self._account(address)
        self._set_account(address, Account(account.nonce, int_bytes(balance), account.code_hash))

    def get_nonce(self, address: bytes) -> int:
        return self._account(address).nonce

    def set_nonce(self, address: bytes, nonce: int) -> None:
        if not 0 <= nonce < 2**64:
            raise EvmStateError("a nonce is a 64-bit unsigned integer")
        account = self._account(address)
        self._set_account(address, Account(nonce, account.balance, account.code_hash))

    def increment_nonce(self, address: bytes) -> None:
        self.set_nonce(address, self.get_nonce(address) + 1)

    # ---- code ----------------------------------------------------------------------------

    def get_code(self, address: bytes) -> bytes:
        code_hash = self._account(address).code_hash
        if not code_hash:
            return b""
        code = self._top.get(code_key(code_hash))
        if code is None:
            raise EvmStateError(f"code {code_hash.hex()} is missing from state")
        return code

    def set_code(self, address: bytes, code: bytes) -> None:
        account = self._account(address)
        code_hash = b""
        if code:
            code_hash = keccak(code)
            self._store(code_key(code_hash), code)
        self._set_account(address, Account(account.nonce, account.balance, code_hash))

    def get_code_hash(self, address: bytes) -> Hash32:
        # EXTCODEHASH itself pushes 0 for an empty account (EIP-1052); py-evm checks that.
        return Hash32(self._account(address).code_hash or EMPTY_CODE_HASH)

    def delete_code(self, address: bytes) -> None:
        account = self._account(address)
        self._set_account(address, Account(account.nonce, account.balance, b""))

    # ---- accounts ------------------------------------------------------------------------

    def account_has_code_or_nonce(self, address: bytes) -> bool:
        account = self._account(address)
        return account.nonce != 0 or bool(account.code_hash)

    def delete_account(self, address: bytes) -> None:
        self.delete_storage(address)
        self._store(account_key(address), None)

    def account_exists(self, address: bytes) -> bool:
        return self._top.get(account_key(address)) is not None

    def touch_account(self, address: bytes) -> None:
        pass  # empty accounts are never stored, so touching one changes nothing

    def account_is_empty(self, address: bytes) -> bool:
        return self._account(address).is_empty

    def is_address_warm(self, address: bytes) -> bool:
        return any(address in warm for warm in self._warm)

    def mark_address_warm(self, address: bytes) -> None:
        self._warm[-1].add(address)

    # ---- journal: one child overlay per checkpoint ----------------------------------------

    def record(self) -> JournalDBCheckpoint:
        # py-evm records the same checkpoint in its transient-storage journal (EIP-1153),
        # whose own entries come from its process-wide counter: drawing ours from that
        # counter too keeps the two from ever colliding.
        checkpoint = get_next_checkpoint()
        self._layers.append(self._top.child())
        self._warm.append(set())
        self._checkpoints.append(checkpoint)
        return JournalDBCheckpoint(checkpoint)

    def _depth_of(self, checkpoint: Any) -> int:
        try:
            return self._checkpoints.index(checkpoint) + 1
        except ValueError:
            raise EvmStateError(f"unknown checkpoint {checkpoint!r}") from None

    def discard(self, checkpoint: Any) -> None:
        depth = self._depth_of(checkpoint)
        for layer in self._layers[depth:]:
            layer.discard()
        del self._layers[depth:], self._warm[depth:], self._checkpoints[depth - 1 :]

    def commit(self, checkpoint: Any) -> None:
        depth = self._depth_of(checkpoint)
        while len(self._layers) > depth:
            self._layers.pop().merge_into_parent()
            warm = self._warm.pop()
            self._warm[-1].update(warm)
        del self._checkpoints[depth - 1 :]

    def lock_changes(self) -> None:
        pass  # one database per transaction: nothing carries over to lock

    # ---- the Ethereum state root: not ours to compute ----------------------------------------

    @property
    def state_root(self) -> Hash32:
        return _NO_ROOT

    @state_root.setter
    def state_root(self, value: Hash32) -> None:
        pass  # State.revert restores the root it saw; the overlays already rolled back

    def has_root(self, state_root: bytes) -> bool:
        return state_root == _NO_ROOT

    def make_state_root(self) -> Hash32:
        return _NO_ROOT

    def persist(self) -> Any:
        raise NotImplementedError("the channel ledger persists EVM state; merge the overlay")
