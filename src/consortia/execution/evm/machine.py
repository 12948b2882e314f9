"""Running Ethereum transactions and calls with py-evm (Cancun rules) on our overlays.

`Evm.apply` checks a transaction against the state (nonce, gas, balance), then runs it with
py-evm's Cancun transaction executor over an `OverlayAccountDB`, so every account, code and
storage change lands in the transaction's overlay. The caller merges that overlay when the
outcome is not INVALID: a transaction that reverts or runs out of gas still uses its nonce,
as on Ethereum, while everything its calls wrote is rolled back by the journal.

Consortium pricing: gas is metered (so endless loops end at the transaction's gas limit,
which the executor keeps within the channel's per-transaction and per-block limits) but
never charged: the effective gas price is zero whatever the transaction offers, the
fee recipient is the zero address and the base fee is zero. Block context: NUMBER is the
block height, TIMESTAMP the block time in seconds, PREVRANDAO and BLOCKHASH are zero.

Importing this module imports py-evm (about 0.8 s); the executor does so on the first
Ethereum transaction only, so channels without EVM use never pay for it.
"""

from __future__ import annotations

from typing import Any, cast

from eth._utils.address import generate_contract_address
from eth.abc import AtomicDatabaseAPI, ComputationAPI, SignedTransactionAPI
from eth.exceptions import OutOfGas, Revert
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.berlin.transactions import calculate_txn_intrinsic_gas_berlin
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.state import CancunState
from eth.vm.forks.cancun.transaction_context import CancunTransactionContext
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_typing import Address, BlockNumber, Hash32
from eth_utils.exceptions import ValidationError

from consortia.execution.evm.accounts import OverlayAccountDB
from consortia.execution.evm.layout import EvmStateError
from consortia.execution.evm.outcome import TX_GAS_MAX, EvmBlock, EvmOutcome
from consortia.execution.overlay import Overlay
from consortia.ledger.interface import StateReader
from consortia.types import STATUS_FAILED, STATUS_INVALID, STATUS_OK
from consortia.types.eth import EthTransaction

REVERT_DATA_BYTES_MAX = 4096  # kept in the receipt so clients can decode custom errors
ZERO_ADDRESS = Address(b"\x00" * 20)
_NO_ROOT = Hash32(b"\x00" * 32)
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


class _Tx:
    """The transaction as py-evm's executor reads it (sender already recovered)."""

    type_id = 2  # fee-market rules, never blob fees

    def __init__(
        self, sender: bytes, nonce: int, gas: int, to: bytes | None, value: int, data: bytes, access: Any
    ) -> None:
        self.sender = sender
        self.nonce = nonce
        self.gas = gas
        self.to = b"" if to is None else to  # py-evm's CREATE_CONTRACT_ADDRESS
        self.value = value
        self.data = data
        self.access_list = access
        self.max_fee_per_gas = 0
        self.max_priority_fee_per_gas = 0
        self.gas_price = 0
        self.intrinsic_gas = calculate_txn_intrinsic_gas_berlin(cast(SignedTransactionAPI, self))

    def validate(self) -> None:
        pass  # decoded and checked by consortia.types.eth and Evm.apply


class _ChannelState(CancunState):
    account_db_class = OverlayAccountDB

    def set_system_contracts(self) -> None:
        pass  # no beacon chain, so no EIP-4788 beacon roots contract

    def get_gas_price(self, transaction: Any) -> int:
        return 0

    def get_tip(self, transaction: Any) -> int:
        return 0

    def get_transaction_context(self, transaction: Any) -> Any:
        return CancunTransactionContext(gas_price=0, origin=transaction.sender)

    def validate_transaction(self, transaction: Any) -> None:
        pass  # Evm.apply checked nonce, gas and balance against this very state


class Evm:
    """Stateless: one instance serves every block and fork."""

    def apply(self, tx_overlay: Overlay, tx: EthTransaction, block: EvmBlock) -> EvmOutcome:
        """Run `tx` writing into `tx_overlay` (a child of the block's overlay).

        INVALID outcomes wrote nothing; otherwise the caller merges `tx_overlay`.
        Raises EvmStateError when stored EVM records are malformed.
        """
        access = tuple(
            (address, tuple(int.from_bytes(k, "big") for k in keys)) for address, keys in tx.access_list
        )
        ptx = _Tx(tx.sender, tx.nonce, tx.gas, tx.to, tx.value, tx.data, access)
        state = _state(tx_overlay, block)
        reason = _invalid_reason(state, tx, ptx)
        if reason is not None:
            return EvmOutcome(STATUS_INVALID, reason, 0, b"", ())
        return _run(state, ptx)

    def call(
        self,
        state: StateReader,
        block: EvmBlock,
        sender: bytes,
        to: bytes | None,
        data: bytes,
        value: int = 0,
        gas: int = TX_GAS_MAX,
    ) -> EvmOutcome:
        """Run a call read-only against `state` (eth_call): no signature, nonce or
        permission; nothing is kept; `gas` is capped at TX_GAS_MAX (the executor caps it
        at the channel's limit). Raises EvmStateError for malformed stored records."""
        overlay = Overlay(state)
        try:
            pstate = _state(overlay, block)
            ptx = _Tx(sender, pstate.get_nonce(Address(sender)), min(gas, TX_GAS_MAX), to, value, data, ())
            if ptx.gas < ptx.intrinsic_gas:
                return EvmOutcome(
                    STATUS_INVALID, f"gas {ptx.gas} is below the intrinsic {ptx.intrinsic_gas}", 0, b"", ()
                )
            if pstate.get_balance(Address(sender)) < value:
                return EvmOutcome(STATUS_INVALID, "insufficient balance for the value", 0, b"", ())
            return _run(pstate, ptx)
        finally:
            overlay.discard()


def _state(overlay: Overlay, block: EvmBlock) -> _ChannelState:
    context = ExecutionContext(
        coinbase=ZERO_ADDRESS,
        timestamp=block.timestamp,
        block_number=BlockNumber(block.number),
        difficulty=0,
        mix_hash=_NO_ROOT,
        gas_limit=block.gas_limit,
        prev_hashes=(),
        chain_id=block.chain_id,
        base_fee_per_gas=0,
        excess_blob_gas=0,
    )
    # py-evm hands its `db` argument to the account database class, which wants an Overlay.
    return _ChannelState(cast(AtomicDatabaseAPI, overlay), context, _NO_ROOT)


def _invalid_reason(state: _ChannelState, tx: EthTransaction, ptx: _Tx) -> str | None:
    """Why `tx` cannot be included at this point of the block, or None."""
    if tx.gas > TX_GAS_MAX:
        return f"gas limit {tx.gas} exceeds the maximum of {TX_GAS_MAX}"
    if tx.gas < ptx.intrinsic_gas:
        return f"intrinsic gas too low: {tx.gas} < {ptx.intrinsic_gas}"
    if tx.to is None and len(tx.data) > MAX_INITCODE_SIZE:
        return f"init code of {len(tx.data)} bytes exceeds {MAX_INITCODE_SIZE} (EIP-3860)"
    sender = Address(tx.sender)
    expected = state.get_nonce(sender)
    if tx.nonce < expected:
        return f"nonce too low: account nonce is {expected}, transaction has {tx.nonce}"
    if tx.nonce > expected:
        return f"nonce gap: account nonce is {expected}, transaction has {tx.nonce}"
    if state.get_code(sender):
        return "sender is a contract (EIP-3607)"
    if state.get_balance(sender) < tx.value:
        return "insufficient balance for the value"
    return None


def _run(state: _ChannelState, ptx: _Tx) -> EvmOutcome:
    try:
        computation: ComputationAPI = state.apply_transaction(cast(SignedTransactionAPI, ptx))
    except ValidationError as exc:  # py-evm refused a state transition it cannot make
        raise EvmStateError(f"the EVM refused the transaction: {exc}") from exc
    gas_used = CancunVM.finalize_gas_used(cast(SignedTransactionAPI, ptx), computation)
    created = generate_contract_address(Address(ptx.sender), ptx.nonce) if not ptx.to else None
    if computation.is_success:
        logs = tuple(
            (address, tuple(t.to_bytes(32, "big") for t in topics), data)
            for address, topics, data in computation.get_log_entries()
        )
        return EvmOutcome(STATUS_OK, "", gas_used, bytes(computation.output), logs, created)
    error = computation.error
    output = bytes(computation.output)[:REVERT_DATA_BYTES_MAX] if isinstance(error, Revert) else b""
    return EvmOutcome(STATUS_FAILED, describe_error(error, output), gas_used, output, (), created)


def describe_error(error: Exception, output: bytes) -> str:
    """A client-readable reason: the revert string, the panic code, or the VM error."""
    if isinstance(error, Revert):
        return "reverted" + revert_reason(output)
    if isinstance(error, OutOfGas):
        return "out of gas"
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def revert_reason(output: bytes) -> str:
    """': <reason>' for Error(string), ': panic 0x..' for Panic(uint256), ': 0x<data>' else."""
    if not output:
        return ""
    if output[:4] == _ERROR_SELECTOR and len(output) >= 68:
        offset = int.from_bytes(output[4:36], "big")
        start = 4 + offset + 32
        if offset <= len(output) and start <= len(output):
            length = int.from_bytes(output[4 + offset : start], "big")
            text = output[start : start + length]
            if len(text) == length:
                return ": " + text.decode("utf-8", errors="replace")
    if output[:4] == _PANIC_SELECTOR and len(output) == 36:
        return f": panic 0x{int.from_bytes(output[4:], 'big'):02x}"
    return ": 0x" + output.hex()
