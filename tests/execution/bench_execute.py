"""CPU per signed token transfer through `Executor.execute_block` plus the receipts root.

Not a test (no timing assertions): run it to re-measure on a host, e.g.

    PYTHONPATH=src python -m tests.execution.bench_execute [--profile]

A channel of 4 orgs with 250 funded clients each (1,000 accounts) on an LMDB ledger in a
temp dir, its certificates validated by the MSP and replays checked by `CommittedTxIds`, as
on a node. Blocks of 500 transfers between random accounts execute on the committed state
(each block on the same state, so every repeat does the same work); the receipts root is
computed from the outcome as the block processor does. Prints the median over repeats of
process CPU time per transfer.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import tempfile
import time
from pathlib import Path

from consortia.crypto import merkle_root
from consortia.execution.executor import BlockOutcome, TxInput
from consortia.types import STATUS_OK, encode

from .transfer_kit import TransferNet

CLIENTS_PER_ORG = 250
BLOCK_TXS = 500
BLOCKS = 4
REPEATS = 5


def receipts_root(outcome: BlockOutcome) -> bytes:
    return merkle_root([encode(r) for r in outcome.receipts])


def run_blocks(net: TransferNet, blocks: list[list[TxInput]]) -> tuple[float, float]:
    """(CPU seconds executing, CPU seconds computing receipts roots) for every block."""
    execute = roots = 0.0
    for inputs in blocks:
        t0 = time.process_time()
        outcome = net.execute(inputs)
        t1 = time.process_time()
        receipts_root(outcome)
        t2 = time.process_time()
        execute += t1 - t0
        roots += t2 - t1
    return execute, roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--blocks", type=int, default=BLOCKS)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one repeat")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consortia-bench-execute-") as tmp:
        net = TransferNet(Path(tmp), CLIENTS_PER_ORG)
        try:
            rng = random.Random(7)
            blocks = [net.transfers(rng, BLOCK_TXS) for _ in range(opts.blocks)]
            outcome = net.execute(blocks[0])
            if any(r.status != STATUS_OK for r in outcome.receipts):
                raise SystemExit("a benchmark transfer failed")
            run_blocks(net, blocks)  # warm caches (MSP certificates, LMDB pages)
            if opts.profile:
                profile = cProfile.Profile()
                profile.runcall(run_blocks, net, blocks)
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            runs = [run_blocks(net, blocks) for _ in range(opts.repeats)]
        finally:
            net.close()
    txs = BLOCK_TXS * opts.blocks
    execute = statistics.median(r[0] for r in runs) / txs * 1e6
    roots = statistics.median(r[1] for r in runs) / txs * 1e6
    total = statistics.median(r[0] + r[1] for r in runs) / txs * 1e6
    print(
        f"execute_block + receipts root: {total:6.2f} us CPU per transfer "
        f"(execute {execute:.2f}, receipts root {roots:.2f}; median of {opts.repeats} x {txs} transfers)"
    )


if __name__ == "__main__":
    main()
