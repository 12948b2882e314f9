"""What running an Ethereum transaction produces, and the Receipt it becomes.

An EVM transaction's Receipt is an ordinary Receipt (so it is covered by the receipts
root, stored, and streamed to event subscribers like any other):

    status    STATUS_OK; STATUS_FAILED when it reverted or ran out of gas (its calls' writes
              are rolled back, its nonce is still used, as on Ethereum); STATUS_INVALID when
              it could not be included (nonce, permission, chain id, gas limit, block gas
              limit reached): no writes, its nonce not used
    error     "" or the reason: "reverted: <reason>", "reverted: panic 0x11", "out of gas"...
    steps     the gas used
    events    one Event("evm", "log", {"address", "topics", "data"}) per log, in order
    result    {"gas_used", "contract_address" (20 bytes or None), "revert_data" (bytes)}

That is everything an Ethereum receipt needs beyond what the block gives (block hash and
number, the transaction's index, cumulative gas and log indexes are derived from the block
and its receipts in order; logsBloom from the logs).

No py-evm import here: the API layer reads these without loading the interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia.types import STATUS_INVALID, ChannelConfig, Event, Receipt

EVM_CONTRACT = "evm"
LOG_EVENT = "log"
# The most gas a channel config may allow a block (Ethereum mainnet's block gas limit) and
# one transaction or read-only call. What a channel allows is its config's
# `block.evm_gas_max` and `block.evm_tx_gas_max`: see block_gas_limit and tx_gas_limit.
BLOCK_GAS_LIMIT = 30_000_000
TX_GAS_MAX = BLOCK_GAS_LIMIT
GAS_TX_MIN = 21_000  # the intrinsic gas of the simplest transaction

Log = tuple[bytes, tuple[bytes, ...], bytes]  # (address, topics, data)


def block_gas_limit(config: ChannelConfig) -> int:
    """The gas all Ethereum transactions of one block may use together (the GASLIMIT)."""
    return min(config.block.evm_gas_max, BLOCK_GAS_LIMIT)


def tx_gas_limit(config: ChannelConfig) -> int:
    """The most gas one Ethereum transaction (or eth_call) may ask for."""
    return min(config.block.evm_tx_gas_max, block_gas_limit(config), TX_GAS_MAX)


@dataclass(frozen=True, slots=True)
class EvmBlock:
    """What the EVM sees of the block it runs in."""

    number: int
    timestamp: int  # seconds
    chain_id: int
    gas_limit: int = BLOCK_GAS_LIMIT  # the GASLIMIT opcode: the channel's block gas limit


@dataclass(frozen=True, slots=True)
class EvmOutcome:
    status: int  # STATUS_OK, STATUS_FAILED or STATUS_INVALID
    error: str
    gas_used: int
    output: bytes  # return data; the revert data when reverted
    logs: tuple[Log, ...]
    contract_address: bytes | None = None  # set for a contract creation


def log_event(log: Log) -> Event:
    address, topics, data = log
    return Event(EVM_CONTRACT, LOG_EVENT, {"address": address, "topics": list(topics), "data": data})


def receipt_of(tx_id: bytes, outcome: EvmOutcome) -> Receipt:
    """The Receipt of an Ethereum transaction's outcome."""
    if outcome.status == STATUS_INVALID:
        return Receipt(tx_id, STATUS_INVALID, outcome.error, [], 0)
    result = {
        "gas_used": outcome.gas_used,
        "contract_address": outcome.contract_address,
        "revert_data": b"" if not outcome.error else outcome.output,
    }
    events = [log_event(log) for log in outcome.logs]
    return Receipt(tx_id, outcome.status, outcome.error, events, outcome.gas_used, result)
