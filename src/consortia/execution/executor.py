"""Executing a block: the deterministic state transition every validating node runs.

`Executor.execute_block` reads top to bottom: for each transaction, check it belongs in this
block (chain, channel, expiry, duplicates, identity at the block time), run its call in a
transaction overlay over the block overlay with a step meter, and keep its writes only if it
succeeded. A system contract's hot method may compute a plainly successful transaction
directly instead (`NativeContract.direct_paths`: the same receipt and writes, without the
overlay, meter and context). Nothing here reads the clock, the network or the disk; the
same inputs give byte-identical receipts and writes on every node.

Ethereum transactions (EthTransaction: sender recovered from its signature while decoding)
share the block, the overlays and the state root: after the same duplicate check, the
chain id, the sender's place on the EVM allowlist and the gas limits are checked, then the
EVM (`execution.evm`) runs it on its own transaction overlay. Gas limits come from the
config at the start of the block (as the block builder saw it): a transaction asking for
more than `tx_gas_limit`, or for more than what the block's earlier Ethereum transactions
left of `block_gas_limit` (Ethereum's rule: their gas used counts), is INVALID without
running, its nonce unused. An honest builder never proposes either (`mempool.Mempool.peek`
sums gas limits), so they mark a faulty proposer, like a nonce that does not follow on.

Precondition: the caller has verified every native transaction's signature against its
signer certificate's key. The executor validates the certificate itself (CA, validity
window at the block timestamp, revocation, role) because that depends on the config at this
point of the block, which config transactions may change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from consortia.crypto import sha256
from consortia.execution.context import (
    STEPS_CALL,
    VALUE_BYTES_MAX,
    Invocable,
    TxEnv,
    decode_trusted,
    encode_plain,
    make_context,
    plain_copy,
)
from consortia.execution.contract import ContractError
from consortia.execution.errors import NotAView, QueryFailed, UnknownContract, UnknownMethodError
from consortia.execution.evm.layout import EvmStateError
from consortia.execution.evm.outcome import EvmBlock, EvmOutcome, block_gas_limit, receipt_of, tx_gas_limit
from consortia.execution.evm.permissions import permitted_org
from consortia.execution.genesis import config_from_state
from consortia.execution.keys import CONFIG_KEY, is_contract_name, lifecycle_def_key
from consortia.execution.overlay import Overlay
from consortia.execution.sandbox import (
    BadArguments,
    CallDepthExceeded,
    ContractRuntimeError,
    Meter,
    OutOfSteps,
    SandboxViolation,
    UnknownMethod,
    compile_contract,
)
from consortia.execution.system import NativeContract, system_contracts
from consortia.execution.system.base import DirectPath
from consortia.identity.errors import IdentityError
from consortia.ledger.interface import StateReader, Write
from consortia.types import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    Caller,
    ChannelConfig,
    CodecError,
    Receipt,
    Transaction,
    Validator,
    decode_value,
    encode,
)
from consortia.types.codec import INT_MAX, INT_MIN
from consortia.types.eth import EthTransaction, eth_chain_id_of

if TYPE_CHECKING:
    from consortia.execution.evm.machine import Evm

COMPILED_CACHE_MAX = 256
VALIDATOR_CACHE_MAX = 4


class ValidatedIdentity(Protocol):
    @property
    def caller(self) -> Caller: ...


class IdentityValidator(Protocol):
    """What the MSP offers: raises an IdentityError subclass (with a `code`) for a bad cert."""

    def validate(self, cert_der: bytes, at_ms: int) -> ValidatedIdentity: ...


ValidatorFactory = Callable[[ChannelConfig], IdentityValidator]


class TxInput(NamedTuple):
    tx_id: bytes
    tx: Transaction | EthTransaction
    # True when `tx` came out of `types.decode_envelope`, which already validated its shape:
    # then execution does not validate it again (same answer, checked once per transaction).
    shape_checked: bool = False


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    receipts: list[Receipt]  # one per transaction, in block order
    writes: list[Write]  # one per (transaction, key) final value, in transaction then key order
    config: ChannelConfig  # the config after the block
    config_changed: bool
    # The canonical encoding of each receipt (`encode(receipts[i])`): the receipts root's
    # leaves, made once.
    encoded_receipts: list[bytes]
    # The state after the block, uncommitted: execute the next block on it before this one
    # is committed (pipelining) or to follow a fork. Never merged into `state`.
    state: Overlay | None = None
    # The senders of the block's Ethereum transactions (sorted, once each): whose account
    # nonces the block may have moved.
    eth_senders: tuple[bytes, ...] = ()


class _GasBudget:
    """A block's EVM gas: what is left of `block_max`, and the per-transaction cap."""

    __slots__ = ("block_max", "left", "tx_max")

    def __init__(self, block_max: int, tx_max: int) -> None:
        self.block_max = block_max
        self.tx_max = tx_max
        self.left = block_max


# Exact immutable types: a list of only these can be copied shallowly.
_SCALAR_TYPES = frozenset((str, bytes, int, bool, type(None)))


def _own_args(args: list[Any]) -> list[Any]:
    """A deep copy of a transaction's arguments (checked by validate_shape): a contract
    mutating its arguments must not change the Transaction, which may run again on another
    fork. Flat arguments (the common case) need only a new list."""
    scalars = _SCALAR_TYPES
    for arg in args:
        if type(arg) not in scalars:
            return decode_trusted(encode(args))  # type: ignore[no-any-return]
    return list(args)


def _invalid_reason(config: ChannelConfig, height: int, tx: Transaction, shape_checked: bool) -> str | None:
    """Why `tx` does not belong in a block at `height` under `config` (before the duplicate
    and identity checks), or None."""
    if tx.chain_id != config.chain_id:
        return "wrong chain_id"
    if tx.channel != config.channel:
        return "wrong channel"
    if not shape_checked:
        try:
            tx.validate_shape()
        except CodecError as exc:
            return f"malformed transaction: {exc}"
    if tx.expiry_height and tx.expiry_height < height:
        return f"expired: expiry_height {tx.expiry_height} < height {height}"
    return None


def _identity(validator: IdentityValidator, cert_der: bytes, at_ms: int) -> Caller | str:
    """The caller `cert_der` proves at `at_ms`, or why it is invalid."""
    try:
        return validator.validate(cert_der, at_ms).caller
    except IdentityError as exc:
        return f"invalid identity: {exc.code}"


class _Failed(Exception):
    """A call that fails before any contract code runs (unknown contract or method)."""


class Executor:
    """Runs blocks and queries. Holds only caches, so one instance serves every fork."""

    def __init__(
        self,
        validator_factory: ValidatorFactory,
        compiled_cache_max: int = COMPILED_CACHE_MAX,
        direct_paths: bool = True,
    ) -> None:
        """`direct_paths=False` runs every transaction as a call, never through a system
        contract's direct path (`NativeContract.direct_paths`): the reference those paths
        are tested against."""
        self._validator_factory = validator_factory
        self._validators: OrderedDict[bytes, IdentityValidator] = OrderedDict()
        self._compiled: OrderedDict[bytes, Invocable] = OrderedDict()
        self._compiled_max = max(1, compiled_cache_max)
        self._system: dict[str, NativeContract] = system_contracts()
        self._direct: dict[tuple[str, str], DirectPath] = {}
        if direct_paths:
            for name, native in self._system.items():
                for method, path in native.direct_paths().items():
                    self._direct[(name, method)] = path
        self._evm: Evm | None = None
        self._last_validator: tuple[ChannelConfig, IdentityValidator] | None = None

    # -- the block rule ----------------------------------------------------------------------

    def execute_block(
        self,
        state: StateReader,
        config: ChannelConfig,
        height: int,
        timestamp_ms: int,
        txs: Sequence[TxInput],
        is_committed: Callable[[bytes], bool],
    ) -> BlockOutcome:
        """Execute `txs` on top of `state` (which is left untouched) and return the outcome.

        `config` is the channel config in force at the start of the block; `is_committed`
        tells whether a tx id is already in the ledger. Raises IdentityError (BadConfig) only
        if `config` itself is unusable.
        """
        block = Overlay(state)
        start_config = config
        validator = self._validator(config)
        # Signer certificate -> its caller, or why it is invalid, under `validator` at this
        # block's time: a block holds many transactions of few signers.
        identities: dict[bytes, Caller | str] = {}
        seen: set[bytes] = set()
        receipts: list[Receipt] = []
        encoded: list[bytes] = []
        writes: list[Write] = []
        eth_gas = _GasBudget(block_gas_limit(start_config), tx_gas_limit(start_config))
        eth_senders: set[bytes] = set()
        for index, (tx_id, tx, shape_checked) in enumerate(txs):
            if isinstance(tx, EthTransaction):
                duplicate = tx_id in seen or is_committed(tx_id)
                seen.add(tx_id)
                eth_senders.add(tx.sender)
                receipt, tx_writes = self._execute_eth(
                    block, config, height, timestamp_ms, index, tx, duplicate, eth_gas
                )
                receipts.append(receipt)
                encoded.append(encode(receipt))
                writes.extend(tx_writes)
                continue
            reason = _invalid_reason(config, height, tx, shape_checked)
            if reason is None:
                if tx_id in seen:
                    reason = "duplicate transaction in block"
                elif is_committed(tx_id):
                    reason = "duplicate transaction: already committed"
                else:
                    identity = identities.get(tx.signer)
                    if identity is None:
                        identity = identities[tx.signer] = _identity(validator, tx.signer, timestamp_ms)
                    if isinstance(identity, str):
                        reason = identity
                    else:
                        caller = identity
            seen.add(tx_id)
            if reason is not None:
                receipt = Receipt(tx_id, STATUS_INVALID, reason, [], 0)
                receipts.append(receipt)
                encoded.append(encode(receipt))
                continue
            # A system contract's direct path, when it has one and the transaction takes it;
            # otherwise the call, in a transaction overlay with a step meter.
            direct = self._direct.get((tx.contract, tx.method))
            done = None if direct is None else direct(block, caller, tx.args, config.tx_steps_max)
            if done is not None:
                events, steps, result, changes = done
                receipt = Receipt(tx_id, STATUS_OK, "", events, steps, result)
                tx_writes = block.put_writes(changes, index)
            else:
                receipt, tx_writes = self._execute_tx(
                    block, config, height, timestamp_ms, index, tx_id, tx, caller
                )
            receipts.append(receipt)
            encoded.append(encode(receipt))
            if tx_writes:
                writes.extend(tx_writes)
                for write in tx_writes:
                    if write.key == CONFIG_KEY:
                        config = config_from_state(block)
                        validator = self._validator(config)
                        identities = {}
                        break
        return BlockOutcome(
            receipts, writes, config, config != start_config, encoded, block, tuple(sorted(eth_senders))
        )

    def _execute_tx(
        self,
        block: Overlay,
        config: ChannelConfig,
        height: int,
        timestamp_ms: int,
        index: int,
        tx_id: bytes,
        tx: Transaction,
        caller: Caller,
    ) -> tuple[Receipt, list[Write]]:
        meter = Meter(config.tx_steps_max)
        overlay = block.child()
        env = TxEnv(caller, config.channel, height, timestamp_ms, tx_id, meter, self)
        try:
            result = self._call(env, overlay, tx.contract, tx.method, _own_args(tx.args))
        except OutOfSteps:
            error = f"OutOfSteps: exceeded {config.tx_steps_max} steps"
        except CallDepthExceeded as exc:
            error = f"CallDepthExceeded: {exc}"
        except (UnknownMethod, BadArguments, ContractRuntimeError, SandboxViolation) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except ContractError as exc:
            error = f"ContractError: {exc}"
        except _Failed as exc:
            error = str(exc)
        else:
            tx_writes = overlay.merge_writes(index)
            return Receipt(tx_id, STATUS_OK, "", env.events, meter.used, result), tx_writes
        overlay.discard()
        return Receipt(tx_id, STATUS_FAILED, error, [], meter.used), []

    def _execute_eth(
        self,
        block: Overlay,
        config: ChannelConfig,
        height: int,
        timestamp_ms: int,
        index: int,
        tx: EthTransaction,
        duplicate: bool,
        gas: _GasBudget,
    ) -> tuple[Receipt, list[Write]]:
        chain_id = eth_chain_id_of(config)
        reason = None
        if duplicate:
            reason = "duplicate transaction"
        elif tx.chain_id != chain_id:
            reason = f"wrong chain id {tx.chain_id}; this channel is {chain_id}"
        elif permitted_org(block, tx.sender) is None:
            reason = f"account 0x{tx.sender.hex()} is not permitted to send transactions"
        elif tx.gas > gas.tx_max:
            reason = f"gas limit {tx.gas} exceeds the maximum of {gas.tx_max}"
        elif tx.gas > gas.left:
            reason = f"block gas limit reached: {gas.left} of {gas.block_max} left, transaction asks {tx.gas}"
        if reason is not None:
            return Receipt(tx.hash, STATUS_INVALID, reason, [], 0), []
        overlay = block.child()
        evm_block = EvmBlock(height, timestamp_ms // 1000, chain_id, gas.block_max)
        try:
            outcome = self.evm().apply(overlay, tx, evm_block)
        except EvmStateError as exc:
            overlay.discard()
            return Receipt(tx.hash, STATUS_FAILED, f"EvmStateError: {exc}", [], 0), []
        if outcome.status == STATUS_INVALID:
            overlay.discard()
            return receipt_of(tx.hash, outcome), []
        gas.left -= outcome.gas_used
        tx_writes = [Write(key, value, index) for key, value in overlay.writes()]
        overlay.merge_into_parent()
        return receipt_of(tx.hash, outcome), tx_writes

    def evm(self) -> Evm:
        """The EVM, loaded on first use (importing py-evm takes most of a second)."""
        if self._evm is None:
            from consortia.execution.evm.machine import Evm

            self._evm = Evm()
        return self._evm

    def _call(self, env: TxEnv, overlay: Overlay, contract: str, method: str, args: list[Any]) -> Any:
        """Run one top-level call with `args` it may own; views run read-only.

        Raises _Failed (unknown contract or method) or whatever the call raises.
        """
        env.meter.charge(STEPS_CALL)
        target = self.resolve(contract, overlay)
        if target is None:
            raise _Failed(f"UnknownContract: {contract}")
        is_view = target.methods.get(method)
        if is_view is None:
            raise _Failed(f"UnknownMethod: {contract}.{method}")
        result = target.invoke(make_context(env, contract, overlay, is_view), method, args, env.meter)
        if type(result) is int and INT_MIN <= result <= INT_MAX:
            return result  # immutable and plain: what the copy below would give
        raw = encode_plain(result, "result")
        if len(raw) > VALUE_BYTES_MAX:
            raise ContractError(f"result of {len(raw)} bytes exceeds {VALUE_BYTES_MAX}")
        return decode_trusted(raw)

    # -- queries -----------------------------------------------------------------------------

    def query(
        self,
        state: StateReader,
        config: ChannelConfig,
        height: int,
        timestamp_ms: int,
        caller: Caller,
        contract: str,
        method: str,
        args: list[Any],
        steps_max: int | None = None,
    ) -> Any:
        """Run a view method read-only against `state` and return its result.

        Raises UnknownContract, UnknownMethodError, NotAView, or QueryFailed (the view raised,
        ran out of steps, or returned something that is not plain data).
        """
        meter_limit = steps_max if steps_max is not None else config.tx_steps_max
        meter = Meter(meter_limit)
        overlay = Overlay(state)
        env = TxEnv(
            caller=caller,
            channel=config.channel,
            height=height,
            timestamp_ms=timestamp_ms,
            tx_id=b"",
            meter=meter,
            runtime=self,
        )
        target = self.resolve(contract, overlay)
        if target is None:
            raise UnknownContract(f"unknown contract {contract!r}")
        is_view = target.methods.get(method)
        if is_view is None:
            raise UnknownMethodError(f"unknown method {contract}.{method}")
        if not is_view:
            raise NotAView(f"{contract}.{method} is not a view")
        try:
            return self._call(env, overlay, contract, method, plain_copy(args, "arguments"))
        except OutOfSteps as exc:
            raise QueryFailed(f"OutOfSteps: exceeded {meter_limit} steps") from exc
        except CallDepthExceeded as exc:
            raise QueryFailed(f"CallDepthExceeded: {exc}") from exc
        except (UnknownMethod, BadArguments, ContractRuntimeError, SandboxViolation) as exc:
            raise QueryFailed(f"{type(exc).__name__}: {exc}") from exc
        except ContractError as exc:
            raise QueryFailed(f"ContractError: {exc}") from exc

    def eth_call(
        self,
        state: StateReader,
        config: ChannelConfig,
        height: int,
        timestamp_ms: int,
        sender: bytes,
        to: bytes | None,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
    ) -> EvmOutcome:
        """Run an EVM call read-only against `state` (eth_call, eth_estimateGas).

        Anyone may call: no signature, nonce or allowlist. `gas` (default: the most) is
        capped at the channel's `tx_gas_limit`, so a call costs the node no more than one
        transaction could. The outcome carries the return data or the revert reason.
        Raises EvmStateError for malformed stored EVM records.
        """
        chain_id = eth_chain_id_of(config)
        block = EvmBlock(height, timestamp_ms // 1000, chain_id, block_gas_limit(config))
        cap = tx_gas_limit(config)
        return self.evm().call(state, block, sender, to, data, value, cap if gas is None else min(gas, cap))

    # -- services for contexts (the Runtime protocol) ----------------------------------------

    def resolve(self, name: str, state: Overlay) -> Invocable | None:
        """The system or committed user contract called `name` as of `state`, or None."""
        native = self._system.get(name)
        if native is not None:
            return native
        if not is_contract_name(name):
            return None
        raw = state.get(lifecycle_def_key(name))
        if raw is None:
            return None
        return self.compile(decode_value(raw)["source"])

    def compile(self, source: str) -> Invocable:
        """The compiled contract for `source`, cached by its hash. Raises SandboxViolation."""
        digest = sha256(source.encode())
        compiled = self._compiled.get(digest)
        if compiled is not None:
            self._compiled.move_to_end(digest)
            return compiled
        compiled = compile_contract(source)
        self._compiled[digest] = compiled
        while len(self._compiled) > self._compiled_max:
            self._compiled.popitem(last=False)
        return compiled

    def config_problem(self, config: ChannelConfig) -> str | None:
        try:
            self._validator(config)
        except IdentityError as exc:
            return exc.code
        return None

    def validator_problem(self, config: ChannelConfig, validator: Validator, at_ms: int) -> str | None:
        """Why `validator` cannot sign blocks under `config` at `at_ms`, or None."""
        try:
            caller = self._validator(config).validate(validator.cert, at_ms).caller
        except IdentityError as exc:
            return exc.code
        if caller.role != "node":
            return "not a node certificate"
        if caller.org != validator.org:
            return f"certificate belongs to {caller.org!r}"
        return None

    def _validator(self, config: ChannelConfig) -> IdentityValidator:
        """Raises IdentityError if the config's CAs or CRLs are unusable."""
        last = self._last_validator
        if last is not None and last[0] is config:
            # Hashing a config (certificates and all) costs more than a small block: blocks
            # pass the very config object the previous block left, which is never mutated.
            return last[1]
        validator = self._validator_for(config)
        self._last_validator = (config, validator)
        return validator

    def _validator_for(self, config: ChannelConfig) -> IdentityValidator:
        digest = config.hash
        validator = self._validators.get(digest)
        if validator is None:
            validator = self._validator_factory(config)
            self._validators[digest] = validator
            while len(self._validators) > VALIDATOR_CACHE_MAX:
                self._validators.popitem(last=False)
        else:
            self._validators.move_to_end(digest)
        return validator
