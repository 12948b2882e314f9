"""CPU per transaction of preparing and committing blocks of token transfers.

Not a test (no timing assertions): run it to measure on a host, e.g.

    PYTHONPATH=src python -m tests.ledger.bench_commit            # ledger in /dev/shm
    PYTHONPATH=src python -m tests.ledger.bench_commit --fsync    # ledger on disk, real fsync

Blocks of 500 transfers among 10,000 accounts, with the write set, receipts and events a
`token.transfer` leaves (2 balance keys per transaction), synthesised up front so only the
ledger and the block processor are timed. It reports the median over rounds (and, in
brackets, the minimum: on a shared host other load only ever adds time):

    prepare     Ledger.prepare (state root: sparse Merkle tree update)
    commit      Ledger.commit (block append + fsync, state, tree nodes, history, tx index,
                receipts in one LMDB transaction), given the roots as the node passes them
    leader      BlockProcessor.build + commit of its own block (executor stubbed out)
    follower    BlockProcessor.commit of a peer's block, transactions already admitted
                (executor stubbed out): tx root, inputs, prepare, receipts root, commit

Without --fsync the ledger lives on tmpfs, where a sync costs next to nothing, so the
figures are the CPU the process spends; with --fsync the wall time per transaction is
reported too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from consortia.crypto import BatchVerifier, merkle_root, sha256
from consortia.execution.executor import BlockOutcome, TxInput
from consortia.ledger import Ledger, Write
from consortia.ledger.store import BodyDigests
from consortia.node.blocks import BlockProcessor
from consortia.types import (
    Block,
    BlockSignature,
    ChannelConfig,
    CommitCertificate,
    ConsensusConfig,
    Envelope,
    Event,
    Header,
    Receipt,
    Transaction,
    encode,
)

CHAIN = "bench-chain"
CHANNEL = "main"
ACCOUNTS = 10_000
TXS_PER_BLOCK = 500
WARM_BLOCKS = 3
BLOCKS_PER_ROUND = 10
ROUNDS = 5
TOKEN_PREFIX = b"c/token\x00"
CERT = bytes(range(256)) * 2 + bytes(100)  # about the size of a DER client certificate
FUNDING = 10**9


def _account(i: int) -> str:
    return f"org{i % 4 + 1}/client{i}@org{i % 4 + 1}"


def _balance_key(account: str) -> bytes:
    return TOKEN_PREFIX + ("\x00balance\x00" + account + "\x00").encode()


class Workload:
    """Deterministic blocks of transfers, each with its writes and receipts."""

    def __init__(self, seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self._balances = [FUNDING] * ACCOUNTS
        self._nonce = 0

    def genesis_writes(self) -> list[Write]:
        return [Write(_balance_key(_account(i)), encode(FUNDING), -1) for i in range(ACCOUNTS)]

    def block(self) -> tuple[list[TxInput], list[bytes], list[Receipt], list[Write]]:
        inputs: list[TxInput] = []
        raws: list[bytes] = []
        receipts: list[Receipt] = []
        writes: list[Write] = []
        for index in range(TXS_PER_BLOCK):
            s, r = self._rng.sample(range(ACCOUNTS), 2)
            sender, recipient = _account(s), _account(r)
            self._nonce += 1
            tx = Transaction(
                CHAIN, CHANNEL, self._nonce.to_bytes(8, "big"), CERT, "token", "transfer", [recipient, 1]
            )
            payload = encode(tx)
            raw = encode(Envelope(payload, bytes(64)))
            tx_id = sha256(payload)
            self._balances[s] -= 1
            self._balances[r] += 1
            keyed = sorted(
                [
                    (_balance_key(sender), encode(self._balances[s])),
                    (_balance_key(recipient), encode(self._balances[r])),
                ]
            )
            writes.extend(Write(k, v, index) for k, v in keyed)
            event = Event("token", "Transferred", {"amount": 1, "from": sender, "to": recipient})
            receipts.append(Receipt(tx_id, 0, "", [event], 31, self._balances[s]))
            inputs.append(TxInput(tx_id, tx, True))
            raws.append(raw)
        return inputs, raws, receipts, writes


def _config() -> ChannelConfig:
    return ChannelConfig(CHAIN, CHANNEL, "ed25519", [], {}, ConsensusConfig())


def _header(ledger: Ledger, root: bytes, raws: list[bytes], receipts: list[Receipt]) -> Header:
    return Header(
        chain_id=CHAIN,
        channel=CHANNEL,
        height=ledger.height + 1,
        parent_hash=ledger.head_hash,
        timestamp_ms=1_700_000_000_000 + ledger.height,
        proposer="node0",
        tx_root=merkle_root(raws),
        state_root=root,
        receipts_root=merkle_root([encode(r) for r in receipts]),
        tx_count=len(raws),
    )


def _certificate(block: Block) -> CommitCertificate:
    signatures = [BlockSignature(CERT, bytes(64)) for _ in range(3)]
    return CommitCertificate(block.header.height, block.hash, signatures)


def _genesis(ledger: Ledger, writes: Sequence[Write]) -> None:
    prepared = ledger.prepare(writes)
    ledger.initialize(Block(_header(ledger, prepared.root, [], []), []), writes)


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def ledger_round(ledger: Ledger, workload: Workload, blocks: int) -> tuple[float, float, float]:
    """(prepare, commit CPU, commit wall) seconds per transaction over `blocks` blocks."""
    prepare_s = commit_s = wall_s = 0.0
    for _ in range(blocks):
        inputs, raws, receipts, writes = workload.block()
        prepared, spent = _cpu(lambda: ledger.prepare(writes))  # noqa: B023
        prepare_s += spent
        header = _header(ledger, prepared.root, raws, receipts)
        block = Block(header, raws)
        block = Block(header, raws, _certificate(block))
        encoded = [encode(r) for r in receipts]  # as the executor hands them over
        digests = BodyDigests([i.tx_id for i in inputs], header.tx_root, header.receipts_root, encoded)
        wall = time.perf_counter()
        _, spent = _cpu(lambda: ledger.commit(block, receipts, prepared, digests))  # noqa: B023
        wall_s += time.perf_counter() - wall
        commit_s += spent
    n = blocks * TXS_PER_BLOCK
    return prepare_s / n, commit_s / n, wall_s / n


class _StubExecutor:
    """Hands back the outcome prepared for the block being executed."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.next: BlockOutcome | None = None

    def execute_block(self, *args: Any) -> BlockOutcome:
        assert self.next is not None
        return self.next


def _processor(ledger: Ledger, executor: _StubExecutor) -> BlockProcessor:
    return BlockProcessor(ledger, executor, BatchVerifier())  # type: ignore[arg-type]


def processor_round(
    leader: BlockProcessor, follower: BlockProcessor, workload: Workload, blocks: int
) -> tuple[float, float]:
    """(leader, follower) CPU seconds per transaction over `blocks` blocks."""
    config = _config()
    leader_s = follower_s = 0.0
    for _ in range(blocks):
        inputs, raws, receipts, writes = workload.block()
        outcome = BlockOutcome(receipts, writes, config, False, [encode(r) for r in receipts])
        leader.executor.next = follower.executor.next = outcome  # type: ignore[attr-defined]
        for raw, tx_input in zip(raws, inputs, strict=True):
            follower.verified.add(raw, tx_input)  # admitted from gossip before the block comes
        height = leader.ledger.height + 1
        start = time.process_time()
        block = leader.build(
            config, "node0", height, leader.ledger.head_hash, 1_700_000_000_000 + height, inputs, raws, b""
        )
        certificate = _certificate(block)
        leader.commit(config, block, certificate)
        leader_s += time.process_time() - start
        start = time.process_time()
        follower.commit(config, block, certificate)
        follower_s += time.process_time() - start
    n = blocks * TXS_PER_BLOCK
    return leader_s / n, follower_s / n


def _figure(seconds_per_tx: Sequence[float]) -> str:
    median, least = statistics.median(seconds_per_tx) * 1e6, min(seconds_per_tx) * 1e6
    return f"{median:7.1f} us/tx CPU [{least:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fsync", action="store_true", help="put the ledger on disk (real fsync)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--blocks", type=int, default=BLOCKS_PER_ROUND, help="blocks per round")
    parser.add_argument("--ledger-only", action="store_true", help="skip the block processor figures")
    args = parser.parse_args()
    base = None if args.fsync else "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        where = Path(tmp)
        workload = Workload()
        with Ledger.open(where / "ledger", CHANNEL) as ledger:
            _genesis(ledger, workload.genesis_writes())
            ledger_round(ledger, workload, WARM_BLOCKS)
            rows = [ledger_round(ledger, workload, args.blocks) for _ in range(args.rounds)]
        prepare, commit, wall = zip(*rows, strict=True)
        print(f"ledger in {'a disk directory' if args.fsync else 'tmpfs'}, {TXS_PER_BLOCK} txs/block")
        print(f"prepare   {_figure(prepare)}")
        print(
            f"commit    {_figure(commit)}"
            + (f"  ({statistics.median(wall) * 1e6:.1f} us/tx wall)" if args.fsync else "")
        )
        if args.ledger_only:
            return

        config = _config()
        transfers = Workload(seed=11)  # both ledgers start from one genesis; blocks come from the leader
        with (
            Ledger.open(where / "leader", CHANNEL) as leader_ledger,
            Ledger.open(where / "follower", CHANNEL) as follower_ledger,
        ):
            for ledger in (leader_ledger, follower_ledger):
                _genesis(ledger, Workload().genesis_writes())
            leader = _processor(leader_ledger, _StubExecutor(config))
            follower = _processor(follower_ledger, _StubExecutor(config))
            processor_round(leader, follower, transfers, WARM_BLOCKS)
            rows2 = [processor_round(leader, follower, transfers, args.blocks) for _ in range(args.rounds)]
        lead, follow = zip(*rows2, strict=True)
        print(f"leader    {_figure(lead)}  (build + commit, executor stubbed)")
        print(f"follower  {_figure(follow)}  (execute + commit, executor stubbed)")


if __name__ == "__main__":
    main()
