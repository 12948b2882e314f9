"""How much EVM gas py-evm burns per second here: the basis of the default gas limits.

Not a test (no timing assertions): run it to re-measure on a host, e.g.

    PYTHONPATH=src:. python -m tests.evm.bench_evm_gas

and compare the worst case with `types.config.BlockLimits.evm_block_gas` (the default is
chosen so that a block of the slowest EVM work executes in about a second). Workloads, each
through `Executor.execute_block` on an in-memory state (so this is interpreter time, without
the ledger commit):

    storage loop   Probe.spin(): `counter += 1` forever on one warm slot, until out of gas
    compute loop   a bare JUMPDEST/PUSH/JUMP loop (cheapest opcodes, most of them per gas)
    erc20          Token.transfer to fresh holders (cold slots), many per block
"""

from __future__ import annotations

import statistics
import time

import msgspec

from consortia.execution.evm.outcome import BLOCK_GAS_LIMIT
from consortia.execution.executor import TxInput
from consortia.types import STATUS_FAILED, STATUS_OK

from .evm_kit import ALICE_KEY, PROBE_CODE, EvmChain, call_data, token_deploy_data

ROUNDS = 3
LOOP_GAS = 3_000_000
TRANSFERS = 200

# Init code returning the runtime `JUMPDEST PUSH1 0 JUMP` (5b 6000 56): loops forever.
_LOOP_RUNTIME = bytes.fromhex("5b600056")
COMPUTE_LOOP_INIT = (
    bytes.fromhex("6004600c60003960046000f3") + _LOOP_RUNTIME
)  # CODECOPY the 4 bytes at offset 12, RETURN them


def _chain() -> EvmChain:
    """A chain whose gas limits are the ceilings: this measures the interpreter."""
    chain = EvmChain()
    block = msgspec.structs.replace(
        chain.config.block, evm_gas_max=BLOCK_GAS_LIMIT, evm_tx_gas_max=BLOCK_GAS_LIMIT
    )
    chain.config = msgspec.structs.replace(chain.config, block=block)
    return chain


def _deploy(chain: EvmChain, code: bytes) -> bytes:
    receipt = chain.run(chain.eth(ALICE_KEY, None, code, gas=LOOP_GAS)).receipts[0]
    assert receipt.status == STATUS_OK, receipt.error
    address: bytes = receipt.result["contract_address"]
    return address


def _gas_per_s(chain: EvmChain, txs: list[TxInput], ok_status: int) -> tuple[float, float, int]:
    """(gas per wall second, gas per CPU second of this process, gas burnt)."""
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = chain.run(*txs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert all(r.status == ok_status for r in outcome.receipts), outcome.receipts[0].error
    gas = sum(r.steps for r in outcome.receipts)
    return gas / wall, gas / cpu, gas


def storage_loop() -> tuple[float, float, int]:
    chain = _chain()
    probe = _deploy(chain, PROBE_CODE)
    return _gas_per_s(chain, [chain.eth(ALICE_KEY, probe, call_data("spin()"), gas=LOOP_GAS)], STATUS_FAILED)


def compute_loop() -> tuple[float, float, int]:
    chain = _chain()
    loop = _deploy(chain, COMPUTE_LOOP_INIT)
    return _gas_per_s(chain, [chain.eth(ALICE_KEY, loop, b"", gas=LOOP_GAS)], STATUS_FAILED)


def erc20() -> tuple[float, float, int]:
    chain = _chain()
    token = _deploy(chain, token_deploy_data("Bench", "B", 10**24))
    txs = [
        chain.eth(
            ALICE_KEY, token, call_data("transfer(address,uint256)", i.to_bytes(20, "big"), 1), gas=100_000
        )
        for i in range(1, TRANSFERS + 1)
    ]
    return _gas_per_s(chain, txs, STATUS_OK)


def main() -> None:
    EvmChain().executor.evm()  # import py-evm before timing
    for name, workload in (("storage loop", storage_loop), ("compute loop", compute_loop), ("erc20", erc20)):
        runs = [workload() for _ in range(ROUNDS)]
        wall = statistics.median(r[0] for r in runs) / 1e6
        cpu = statistics.median(r[1] for r in runs) / 1e6
        print(
            f"{name:13s} {wall:6.2f} M gas/s wall, {cpu:6.2f} M gas/CPU-s "
            f"(median of {ROUNDS}, {runs[0][2]:,} gas)"
        )


if __name__ == "__main__":
    main()
