"""CPU per signed token transfer through `Executor.execute_block` plus the receipts root.

Not a test (no timing assertions): run it to re-measure on a host, e.g.

    PYTHONPATH=src python -m tests.execution.bench_execute [--profile]

A channel of 4 orgs on an LMDB ledger in a temp dir, certificates validated by the MSP and
replays checked by `CommittedTxIds`, as on a node. As in the benchmark's transfer workload
(`bench/workloads/transfer.py`), 4 funded clients per org sign transfers to 1,000 accounts
(250 per org); `--clients-per-org 250` makes every transfer's signer one of 1,000 instead.
Blocks of 500 transfers execute on the committed state (each block on the same state, so
every repeat does the same work); the receipts root is computed from the receipts'
encodings the outcome carries (`--encode-receipts`: encodes them itself, which also runs the
script on code from before `BlockOutcome.encoded_receipts`). Prints the median over repeats of
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
from collections.abc import Callable
from pathlib import Path

from consortia.crypto import merkle_root
from consortia.execution.executor import BlockOutcome, TxInput
from consortia.types import STATUS_OK, encode

from .transfer_kit import ORGS, TransferNet

CLIENTS_PER_ORG = 4  # as bench.target.CLIENTS_PER_ORG
ACCOUNTS_PER_ORG = 250
BLOCK_TXS = 500
BLOCKS = 4
REPEATS = 5


def receipts_root(outcome: BlockOutcome) -> bytes:
    return merkle_root(outcome.encoded_receipts)


def receipts_root_encoding(outcome: BlockOutcome) -> bytes:
    """The root from receipts encoded here (without `encoded_receipts`, as before it)."""
    return merkle_root([encode(r) for r in outcome.receipts])


def run_blocks(
    net: TransferNet, blocks: list[list[TxInput]], root: Callable[[BlockOutcome], bytes] = receipts_root
) -> tuple[float, float]:
    """(CPU seconds executing, CPU seconds computing receipts roots) for every block."""
    execute = roots = 0.0
    for inputs in blocks:
        t0 = time.process_time()
        outcome = net.execute(inputs)
        t1 = time.process_time()
        root(outcome)
        t2 = time.process_time()
        execute += t1 - t0
        roots += t2 - t1
    return execute, roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--blocks", type=int, default=BLOCKS)
    parser.add_argument("--clients-per-org", type=int, default=CLIENTS_PER_ORG)
    parser.add_argument(
        "--encode-receipts",
        action="store_true",
        help="encode the receipts for the root here (measures code without BlockOutcome.encoded_receipts)",
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one repeat")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consortia-bench-execute-") as tmp:
        net = TransferNet(Path(tmp), opts.clients_per_org)
        try:
            rng = random.Random(7)
            accounts = [f"{org}/sink{i}" for org in ORGS for i in range(ACCOUNTS_PER_ORG)]
            blocks = [net.transfers(rng, BLOCK_TXS, accounts) for _ in range(opts.blocks)]
            outcome = net.execute(blocks[0])
            if any(r.status != STATUS_OK for r in outcome.receipts):
                raise SystemExit("a benchmark transfer failed")
            root = receipts_root_encoding if opts.encode_receipts else receipts_root
            run_blocks(net, blocks, root)  # warm caches (MSP certificates, LMDB pages)
            if opts.profile:
                profile = cProfile.Profile()
                profile.runcall(run_blocks, net, blocks, root)
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            runs = [run_blocks(net, blocks, root) for _ in range(opts.repeats)]
        finally:
            net.close()
    txs = BLOCK_TXS * opts.blocks
    execute = statistics.median(r[0] for r in runs) / txs * 1e6
    roots = statistics.median(r[1] for r in runs) / txs * 1e6
    total = statistics.median(r[0] + r[1] for r in runs) / txs * 1e6
    best = min(r[0] + r[1] for r in runs) / txs * 1e6
    print(
        f"execute_block + receipts root: {total:6.2f} us CPU per transfer "
        f"(execute {execute:.2f}, receipts root {roots:.2f}; median of {opts.repeats} x {txs} transfers; "
        f"best {best:.2f})"
    )


if __name__ == "__main__":
    main()
