"""The node: the imperative shell that wires pool, engine, executor and ledger together.

One asyncio loop owns all mutable node state. Block execution and the durable commit run
on a single worker thread, so the loop stays free to admit transactions meanwhile; the
ledger is written from that thread only. A transaction is reported committed only after
`Ledger.commit` returned, i.e. after the block file was fsync'd and the state committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortia.consensus import (
    Action,
    BlockSigner,
    BuildProposal,
    CommitBlock,
    Committed,
    Engine,
    ProposalBuilt,
    SoloEngine,
    Tick,
)
from consortia.crypto import BatchVerifier, merkle_root, sha256
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.execution.genesis import config_from_state
from consortia.identity.msp import MSP, IdentityError
from consortia.ledger.store import Ledger, PreparedState
from consortia.mempool import Mempool, MempoolError, PooledTx, PoolLimits
from consortia.node.admission import AdmissionError, Admitted, SignatureBatcher, parse_envelope, signature_job
from consortia.types import (
    Block,
    Caller,
    ChannelConfig,
    Header,
    Receipt,
    Transaction,
    decode,
    encode,
)

log = logging.getLogger("consortia.node")


@dataclass(frozen=True)
class CommitInfo:
    height: int
    index: int
    receipt: Receipt


@dataclass
class NodeStats:
    admitted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    committed_txs: int = 0
    blocks: int = 0
    last_block_ms: float = 0.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Node:
    """A validating node hosting one channel."""

    def __init__(
        self,
        name: str,
        ledger: Ledger,
        signer: BlockSigner,
        pool_limits: PoolLimits | None = None,
        tick_ms: int = 5,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.name = name
        self.ledger = ledger
        self.signer = signer
        self.tick_ms = tick_ms
        self.clock_ms = clock_ms
        self.config: ChannelConfig = config_from_state(ledger.state)
        self.msp = MSP(self.config)
        self.executor = Executor(MSP)
        self.mempool = Mempool(pool_limits)
        self.engine: Engine = self._make_engine()
        self.stats = NodeStats()
        self._verifier = BatchVerifier()
        self._batcher = SignatureBatcher(self._verifier)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="commit")
        self._pending: dict[bytes, Transaction] = {}
        self._waiters: dict[bytes, list[asyncio.Future[CommitInfo]]] = {}
        self._block_subscribers: set[asyncio.Queue[Block]] = set()
        self._event_subscribers: set[asyncio.Queue[tuple[int, bytes, Receipt]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ---- lifecycle ---------------------------------------------------------------------
    def _make_engine(self) -> Engine:
        engine = self.config.consensus.engine
        if engine != "solo":
            raise ValueError(f"consensus engine {engine!r} is not available on this node")
        head = self.ledger.head_hash
        return SoloEngine(self.name, self.signer, self.config.block, self.ledger.height, head)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="node-loop")

    async def stop(self) -> None:
        """Stop cutting blocks, finish the block in flight, close the ledger."""
        self._stopping = True
        if self._task is not None:
            await self._task
        self._worker.shutdown(wait=True)
        self._verifier.close()
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.cancel()
        self.ledger.close()

    async def _run(self) -> None:
        in_flight: asyncio.Future[None] | None = None
        while not self._stopping or in_flight is not None:
            if in_flight is not None and in_flight.done():
                in_flight.result()
                in_flight = None
            if in_flight is None and not self._stopping:
                tick = Tick(self.clock_ms(), len(self.mempool), self.mempool.size_bytes)
                actions = self.engine.step(tick)
                if actions:
                    in_flight = asyncio.ensure_future(self._perform(actions))
            await asyncio.sleep(self.tick_ms / 1000)

    async def _perform(self, actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, BuildProposal):
                built = await self._build(action)
                if built is None:
                    queue.extend(self.engine.step(Committed(self.ledger.height, self.ledger.head_hash)))
                    continue
                self._proposal = built
                queue.extend(self.engine.step(ProposalBuilt(built[0])))
            elif isinstance(action, CommitBlock):
                await self._commit(action)
                queue.extend(self.engine.step(Committed(action.block.header.height, action.block.hash)))
            else:  # pragma: no cover - Solo emits nothing else; multi-node engines add the network
                raise RuntimeError(f"action {type(action).__name__} needs a network driver")

    # ---- block production ---------------------------------------------------------------
    async def _build(self, action: BuildProposal) -> tuple[Block, BlockOutcome, PreparedState] | None:
        limits = self.config.block
        picked = self.mempool.peek(limits.txs_max, limits.bytes_max)
        if not picked:
            return None
        inputs = [TxInput(p.tx_id, self._pending[p.tx_id]) for p in picked]
        raws = [p.raw for p in picked]
        parent = self.ledger.head
        assert parent is not None, "a node always has at least its genesis block"
        timestamp = max(self.clock_ms(), parent.timestamp_ms)
        height = action.height
        config = self.config
        loop = asyncio.get_running_loop()

        def build() -> tuple[Block, BlockOutcome, PreparedState]:
            outcome = self.executor.execute_block(
                self.ledger.state, config, height, timestamp, inputs, self.ledger.has_tx
            )
            prepared = self.ledger.prepare(outcome.writes)
            header = Header(
                chain_id=config.chain_id,
                channel=config.channel,
                height=height,
                parent_hash=action.parent_hash,
                timestamp_ms=timestamp,
                proposer=self.name,
                tx_root=merkle_root(raws),
                state_root=prepared.root,
                receipts_root=merkle_root([encode(r) for r in outcome.receipts]),
                tx_count=len(raws),
                engine=action.engine_data,
            )
            return Block(header, raws), outcome, prepared

        return await loop.run_in_executor(self._worker, build)

    _proposal: tuple[Block, BlockOutcome, PreparedState] | None = None

    async def _commit(self, action: CommitBlock) -> None:
        built = self._proposal
        if built is None or built[0].hash != action.block.hash:
            raise RuntimeError("commit of a block this node did not execute")
        block, outcome, prepared = built
        self._proposal = None
        final = Block(block.header, block.txs, action.certificate)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._worker, self.ledger.commit, final, outcome.receipts, prepared)
        self.stats.last_block_ms = (time.perf_counter() - started) * 1000
        # Durable from here on: acknowledge.
        tx_ids = [r.tx_id for r in outcome.receipts]
        self.mempool.remove(tx_ids)
        for tx_id in tx_ids:
            self._pending.pop(tx_id, None)
        if outcome.config_changed:
            self.config = outcome.config
            self.msp = MSP(self.config)
        self.stats.blocks += 1
        self.stats.committed_txs += len(tx_ids)
        height = final.header.height
        for index, receipt in enumerate(outcome.receipts):
            for fut in self._waiters.pop(receipt.tx_id, ()):
                if not fut.done():
                    fut.set_result(CommitInfo(height, index, receipt))
        self._publish(final, outcome.receipts)

    def _publish(self, block: Block, receipts: list[Receipt]) -> None:
        for q in list(self._block_subscribers):
            _offer(q, block)
        if self._event_subscribers:
            for receipt in receipts:
                if receipt.events:
                    for eq in list(self._event_subscribers):
                        _offer(eq, (block.header.height, receipt.tx_id, receipt))

    # ---- admission ----------------------------------------------------------------------
    async def submit(self, raw: bytes) -> bytes:
        """Admit one encoded envelope into the pool; returns its tx id.

        Raises AdmissionError (with a machine-readable code); on error nothing is stored.
        """
        try:
            admitted = self._check(raw)
            ok = await self._batcher.verify(
                signature_job(admitted.suite, admitted.public_key, admitted.envelope)
            )
            if not ok:
                raise AdmissionError(
                    "signature does not verify against the signer's certificate", "bad_signature"
                )
            self._admit(admitted)
        except AdmissionError as exc:
            self.stats.rejected[exc.code] = self.stats.rejected.get(exc.code, 0) + 1
            raise
        self.stats.admitted += 1
        return admitted.tx_id

    def _check(self, raw: bytes) -> Admitted:
        env, tx = parse_envelope(raw)
        cfg = self.config
        if tx.chain_id != cfg.chain_id:
            raise AdmissionError(
                f"wrong chain id {tx.chain_id!r}; this network is {cfg.chain_id!r}", "wrong_chain"
            )
        if tx.channel != cfg.channel:
            raise AdmissionError(f"unknown channel {tx.channel!r}", "wrong_channel")
        try:
            identity = self.msp.validate(tx.signer, self.clock_ms())
        except IdentityError as exc:
            raise AdmissionError(str(exc), exc.code) from exc
        if tx.expiry_height and tx.expiry_height <= self.ledger.height:
            raise AdmissionError(f"transaction expired at height {tx.expiry_height}", "expired")
        tx_id = env.tx_id
        if tx_id in self.mempool or self.ledger.has_tx(tx_id):
            raise AdmissionError("transaction already submitted (replay)", "duplicate_transaction")
        return Admitted(tx_id, raw, env, tx, identity.caller.cert_hash, identity.suite, identity.public_key)

    def _admit(self, admitted: Admitted) -> None:
        if admitted.tx_id in self.mempool or self.ledger.has_tx(admitted.tx_id):
            raise AdmissionError("transaction already submitted (replay)", "duplicate_transaction")
        try:
            self.mempool.add(PooledTx(admitted.tx_id, admitted.raw, admitted.sender))
        except MempoolError as exc:
            raise AdmissionError(str(exc), exc.code) from exc
        self._pending[admitted.tx_id] = admitted.tx

    async def wait_committed(self, tx_id: bytes, timeout_s: float) -> CommitInfo | None:
        """The commit of `tx_id`, waiting up to `timeout_s`; None if not committed by then."""
        done = self.committed_info(tx_id)
        if done is not None:
            return done
        fut: asyncio.Future[CommitInfo] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_id, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(tx_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[tx_id]

    def committed_info(self, tx_id: bytes) -> CommitInfo | None:
        loc = self.ledger.tx_location(tx_id)
        if loc is None:
            return None
        receipt = self.ledger.receipt(tx_id)
        assert receipt is not None, "a located transaction always has a receipt"
        return CommitInfo(loc[0], loc[1], receipt)

    def is_pending(self, tx_id: bytes) -> bool:
        return tx_id in self.mempool

    # ---- reads --------------------------------------------------------------------------
    def query(self, contract: str, method: str, args: list[Any], caller: Caller | None = None) -> Any:
        head = self.ledger.head
        assert head is not None
        who = caller or Caller(org="", role="reader", subject="anonymous", cert_hash=b"")
        return self.executor.query(
            self.ledger.state, self.config, head.height, head.timestamp_ms, who, contract, method, args
        )

    def subscribe_blocks(self, depth: int = 256) -> asyncio.Queue[Block]:
        q: asyncio.Queue[Block] = asyncio.Queue(depth)
        self._block_subscribers.add(q)
        return q

    def unsubscribe_blocks(self, q: asyncio.Queue[Block]) -> None:
        self._block_subscribers.discard(q)

    def subscribe_events(self, depth: int = 1024) -> asyncio.Queue[tuple[int, bytes, Receipt]]:
        q: asyncio.Queue[tuple[int, bytes, Receipt]] = asyncio.Queue(depth)
        self._event_subscribers.add(q)
        return q

    def unsubscribe_events(self, q: asyncio.Queue[tuple[int, bytes, Receipt]]) -> None:
        self._event_subscribers.discard(q)


def _offer(q: asyncio.Queue[Any], item: object) -> None:
    """Deliver without blocking the node; a subscriber that falls behind loses the oldest."""
    if q.full():
        try:
            q.get_nowait()
        except asyncio.QueueEmpty:  # pragma: no cover
            pass
    q.put_nowait(item)


def open_ledger_with_genesis(data_dir: Path, genesis: Block) -> Ledger:
    """Open the channel's ledger, initialising it from `genesis` on first start.

    Raises ValueError when the ledger on disk belongs to a different genesis.
    """
    from consortia.execution.genesis import genesis_writes
    from consortia.types import ChannelConfig

    config = decode(genesis.txs[0], ChannelConfig)
    ledger = Ledger.open(data_dir / config.channel, config.channel)
    if ledger.height < 0:
        ledger.initialize(genesis, genesis_writes(config))
    else:
        first = ledger.block(0)
        if first is None or first.hash != genesis.hash:
            ledger.close()
            raise ValueError("the ledger in the data directory was created from a different genesis block")
    return ledger


def genesis_hash_hex(genesis: Block) -> str:
    return sha256(encode(genesis.header)).hex()
