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
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, Union

from consortia.consensus import (
    Action,
    BlockSigner,
    Broadcast,
    BuildProposal,
    CommitBlock,
    Committed,
    Engine,
    EngineSetup,
    ExecuteProposal,
    PeerMessage,
    Persist,
    ProposalBuilt,
    ProposalExecuted,
    Send,
    Tick,
)
from consortia.consensus.registry import make_engine, message_types
from consortia.crypto import BatchVerifier, VerifyJob, sha256
from consortia.execution.evm.layout import read_account
from consortia.execution.evm.outcome import block_gas_limit, tx_gas_limit
from consortia.execution.evm.permissions import permitted_org
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.execution.genesis import config_from_state
from consortia.identity.msp import MSP, Identity, IdentityError
from consortia.identity.policy import required_orgs
from consortia.ledger.errors import LedgerError
from consortia.ledger.store import Ledger
from consortia.mempool import DuplicateTransaction, Mempool, MempoolError, PooledTx, PoolLimits
from consortia.node.admission import (
    AdmissionError,
    Admitted,
    SignatureBatcher,
    parse_envelope,
    parse_eth_transaction,
)
from consortia.node.blocks import BlockProcessor, BlockRejected
from consortia.node.committed import CommittedTxIds
from consortia.node.engine_store import EngineStore
from consortia.node.validators import validator_peers
from consortia.node.verified import VerifiedTxs
from consortia.types import (
    Block,
    Caller,
    ChannelConfig,
    CodecError,
    CommitCertificate,
    Receipt,
    Transaction,
    decode,
    encode,
    tx_signing_bytes,
)
from consortia.types.eth import EthTransaction, eth_chain_id_of, tx_kind

T = TypeVar("T")

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


class Transport(Protocol):
    """What the node needs from the peer network."""

    def send(self, peer: str, payload: bytes) -> object: ...

    def broadcast(self, payload: bytes) -> object: ...

    def connected_peers(self) -> list[str]: ...


_TICK = object()
_STOP = object()


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
        engine_store: EngineStore | None = None,
        seed: int | None = None,
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
        self.stats = NodeStats()
        self.engine_store = engine_store
        self.transport: Transport | None = None
        # Called with the envelopes each submission admitted, e.g. to gossip them to other validators.
        self.on_admitted: Callable[[list[bytes]], None] | None = None
        self.on_config_changed: Callable[[ChannelConfig], None] | None = None  # e.g. re-dial peers
        self.halted: str | None = None  # why the node stopped producing (a bug or a bad block)
        self._seed = seed if seed is not None else int.from_bytes(sha256(name.encode())[:8], "big")
        self.engine: Engine = self._make_engine()
        self._message_types = message_types(self.config.consensus.engine)
        self._verifier = BatchVerifier()
        self._batcher = SignatureBatcher(self._verifier)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="commit")
        # Admission remembers what it checked so blocks holding the same bytes skip it, and
        # replay checks are answered from memory (both shared with the commit thread).
        self.verified = VerifiedTxs()
        self.committed = CommittedTxIds(ledger.has_tx, ledger.tx_ids())
        self.blocks = BlockProcessor(ledger, self.executor, self._verifier, self.verified, self.committed)
        self._pending: dict[bytes, Transaction | EthTransaction] = {}
        self._waiters: dict[bytes, list[asyncio.Future[CommitInfo]]] = {}
        self._block_subscribers: set[asyncio.Queue[Block]] = set()
        self._event_subscribers: set[asyncio.Queue[tuple[int, bytes, Receipt]]] = set()
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._jobs: set[asyncio.Future[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._ticks_queued = 0
        self._stopping = False

    # ---- lifecycle ---------------------------------------------------------------------
    def engine_setup(self) -> EngineSetup:
        cfg = self.config
        peers = tuple(validator_peers(cfg))
        policy = cfg.policies.get("block_signing")
        quorum = required_orgs(policy, cfg) if policy is not None else 1
        return EngineSetup(
            node_id=self.name,
            peers=peers,
            signer=self.signer,
            limits=cfg.block,
            height=self.ledger.height,
            head=self.ledger.head_hash,
            seed=self._seed,
            persisted=self.engine_store.load() if self.engine_store is not None else {},
            params=cfg.consensus.params,
            commit_quorum=max(1, quorum),
        )

    def _make_engine(self) -> Engine:
        return make_engine(self.config.consensus.engine, self.engine_setup())

    def start_verifier(self) -> None:
        """Start the signature verification workers now (else on first use)."""
        self._verifier.start()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._ticker(), name="node-ticker"),
            asyncio.create_task(self._drive(), name="node-driver"),
        ]

    async def stop(self) -> None:
        """Stop stepping the engine, let block jobs in flight finish, close the ledger."""
        self._stopping = True
        self._events.put_nowait(_STOP)
        for task in self._tasks:
            await task
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        self._worker.shutdown(wait=True)
        self._verifier.close()
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.cancel()
        self.ledger.close()
        if self.engine_store is not None:
            self.engine_store.close()

    async def _ticker(self) -> None:
        while not self._stopping:
            self._ticks_queued += 1
            self._events.put_nowait(_TICK)
            await asyncio.sleep(self.tick_ms / 1000)

    async def _drive(self) -> None:
        """The only place the engine is stepped: one event at a time, actions in order."""
        while True:
            event = await self._events.get()
            if event is _STOP:
                return
            if event is _TICK:
                self._ticks_queued -= 1
                if self._ticks_queued > 0:
                    continue  # a backlog of ticks: the next one says the same, later
                # Ethereum transactions waiting for a nonce gap do not call for a block.
                event = Tick(self.clock_ms(), self.mempool.ready_count, self.mempool.size_bytes)
            if self.halted is not None:
                continue
            try:
                self._perform_all(self.engine.step(event))  # type: ignore[arg-type]
            except Exception as exc:  # an engine or driver bug: stop producing, keep serving reads
                log.exception("consensus driver failed")
                self.halted = f"{type(exc).__name__}: {exc}"

    def connected_peers(self) -> list[str]:
        return [] if self.transport is None else sorted(self.transport.connected_peers())

    def deliver(self, sender: str, payload: bytes) -> None:
        """A consensus message from an authenticated peer (called by the network layer)."""
        if not self._message_types:
            return
        try:
            message: object = decode(payload, Union[self._message_types])  # type: ignore[arg-type]  # noqa: UP007
        except CodecError:
            self.stats.rejected["bad_peer_message"] = self.stats.rejected.get("bad_peer_message", 0) + 1
            return
        self._events.put_nowait(PeerMessage(sender, message))

    def _perform_all(self, actions: list[Action]) -> None:
        """Perform in order. Consecutive Persists share one durable write, made before the
        next action is performed (the engine contract), so a step that persists a vote, its
        certificate and a block costs one disk flush rather than three."""
        persist: list[tuple[str, bytes | None]] = []
        for action in actions:
            if isinstance(action, Persist):
                persist.append((action.key, action.value))
                continue
            if persist:
                self._persist(persist)
                persist = []
            self._perform(action)
        if persist:
            self._persist(persist)

    def _persist(self, items: list[tuple[str, bytes | None]]) -> None:
        if self.engine_store is not None:
            self.engine_store.put_many(items)

    def _perform(self, action: Action) -> None:
        if isinstance(action, Persist):
            self._persist([(action.key, action.value)])
        elif isinstance(action, Send):
            if self.transport is not None:
                self.transport.send(action.to, encode(action.message))
        elif isinstance(action, Broadcast):
            if self.transport is not None:
                self.transport.broadcast(encode(action.message))
        elif isinstance(action, BuildProposal):
            self._job(self._build(action))
        elif isinstance(action, ExecuteProposal):
            self._job(self._execute(action.block))
        elif isinstance(action, CommitBlock):
            self._job(self._commit(action.block, action.certificate))
        else:  # pragma: no cover - the action union is closed
            raise TypeError(f"unknown action {action!r}")

    def _job(self, coro: Coroutine[Any, Any, None]) -> None:
        # Jobs reach the single worker thread in the order actions were performed.
        fut = asyncio.ensure_future(coro)
        self._jobs.add(fut)
        fut.add_done_callback(self._job_done)

    def _job_done(self, fut: asyncio.Future[None]) -> None:
        self._jobs.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            exc = fut.exception()
            log.error("block job failed: %s", exc, exc_info=exc)
            self.halted = f"{type(exc).__name__}: {exc}"

    def _in_worker(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    # ---- block production ---------------------------------------------------------------
    async def _build(self, action: BuildProposal) -> None:
        cfg = self.config
        limits = cfg.block
        ready = self.mempool.peek(limits.txs_max, limits.bytes_max, block_gas_limit(cfg), tx_gas_limit(cfg))
        picked = [p for p in ready if p.tx_id in self._pending]
        # Shapes were checked at admission: execution need not check them again.
        inputs = [TxInput(p.tx_id, self._pending[p.tx_id], True) for p in picked]
        raws = [p.raw for p in picked]
        parent = self.ledger.head
        assert parent is not None, "a node always has at least its genesis block"
        timestamp = max(self.clock_ms(), parent.timestamp_ms)
        block = await self._in_worker(
            self.blocks.build,
            self.config,
            self.name,
            action.height,
            action.parent_hash,
            timestamp,
            inputs,
            raws,
            action.engine_data,
        )
        self._events.put_nowait(ProposalBuilt(block))

    async def _execute(self, block: Block) -> None:
        try:
            await self._in_worker(self.blocks.execute, self.config, block)
            valid = True
        except (BlockRejected, LedgerError) as exc:
            log.warning("rejecting block %d from %s: %s", block.header.height, block.header.proposer, exc)
            valid = False
        self._events.put_nowait(ProposalExecuted(block.hash, valid))

    async def _commit(self, block: Block, certificate: CommitCertificate) -> None:
        started = time.perf_counter()
        executed = await self._in_worker(self.blocks.commit, self.config, block, certificate)
        self.stats.last_block_ms = (time.perf_counter() - started) * 1000
        if executed is not None:
            self._after_commit(executed.block, executed.outcome)
        self._events.put_nowait(Committed(block.header.height, block.hash))

    def _after_commit(self, block: Block, outcome: BlockOutcome) -> None:
        """Durable from here on: acknowledge, clean the pool, adopt config changes, publish."""
        tx_ids = [r.tx_id for r in outcome.receipts]
        self.mempool.remove(tx_ids)
        for tx_id in tx_ids:
            self._pending.pop(tx_id, None)
        state = self.ledger.state
        for sender in outcome.eth_senders:  # their pooled txs whose nonce was used elsewhere go
            self._forget(self.mempool.sync_account(sender, read_account(state, sender).nonce))
        if outcome.config_changed:
            old_validators = self.config.consensus.validators
            self.config = outcome.config
            self.msp = MSP(self.config)
            if self.on_config_changed is not None:
                self.on_config_changed(self.config)
            if self.config.consensus.validators != old_validators:
                reconfigure = getattr(self.engine, "reconfigure", None)
                if reconfigure is not None:
                    self._perform_all(reconfigure(tuple(validator_peers(self.config))))
                else:  # engines with a fixed committee restart from their persisted state
                    self.engine = self._make_engine()
        self.stats.blocks += 1
        self.stats.committed_txs += len(tx_ids)
        height = block.header.height
        for index, receipt in enumerate(outcome.receipts):
            for fut in self._waiters.pop(receipt.tx_id, ()):
                if not fut.done():
                    fut.set_result(CommitInfo(height, index, receipt))
        self._publish(block, outcome.receipts)

    async def apply_synced(self, block: Block) -> None:
        """Commit a certified block fetched from a peer (block sync), then tell the engine."""
        if block.certificate is None:
            raise BlockRejected("synced block carries no commit certificate")
        executed = await self._in_worker(self.blocks.commit, self.config, block, block.certificate)
        if executed is not None:
            self._after_commit(executed.block, executed.outcome)
            self._events.put_nowait(Committed(block.header.height, block.hash))

    def _publish(self, block: Block, receipts: list[Receipt]) -> None:
        for q in list(self._block_subscribers):
            _offer(q, block)
        if self._event_subscribers:
            for receipt in receipts:
                if receipt.events:
                    for eq in list(self._event_subscribers):
                        _offer(eq, (block.header.height, receipt.tx_id, receipt))

    # ---- admission ----------------------------------------------------------------------
    async def submit(self, raw: bytes, forwarded: bool = False) -> bytes:
        """Admit one encoded envelope into the pool; returns its tx id.

        `forwarded` marks a transaction another validator already admitted and gossiped.
        Raises AdmissionError (with a machine-readable code); on error nothing is stored.
        """
        result = (await self.submit_many([raw], forwarded))[0]
        if isinstance(result, AdmissionError):
            raise result
        return result

    async def submit_many(self, raws: list[bytes], forwarded: bool = False) -> list[bytes | AdmissionError]:
        """Admit many encoded envelopes (one API batch request, or gossip from peers): per
        transaction its id or the AdmissionError that refused it, in order. All signatures
        are verified as one job; each transaction is admitted or refused exactly as if it
        were submitted alone, one after the other (`forwarded` as in `submit`)."""
        blocks = self.stats.blocks
        checked, jobs = self._check_many(raws)
        verdicts = iter(await self._batcher.verify_many(jobs) if jobs else ())
        # Read after the wait: a block committed meanwhile may have changed the config.
        remember = len(self.config.consensus.validators) > 1
        # Replays are asked about again if a block was committed meanwhile. (A block being
        # committed right now needs no new question: its `_after_commit`, still to come,
        # takes its ids out of the pool.)
        recheck = self.stats.blocks != blocks
        out: list[bytes | AdmissionError] = []
        admitted: list[bytes] = []
        for item in checked:
            if isinstance(item, Admitted):
                try:
                    self._admit(item, item.job is None or next(verdicts), recheck, remember)
                except AdmissionError as exc:
                    item = exc
                else:
                    admitted.append(item.raw)
                    out.append(item.tx_id)
                    continue
            if not forwarded:
                self.stats.rejected[item.code] = self.stats.rejected.get(item.code, 0) + 1
            out.append(item)
        self.stats.admitted += len(admitted)
        if admitted and not forwarded and self.on_admitted is not None:
            self.on_admitted(admitted)
        return out

    def _check_many(self, raws: list[bytes]) -> tuple[list[Admitted | AdmissionError], list[VerifyJob]]:
        """Every check but the signature, and the signature checks still to do, in order.

        One clock reading dates the whole batch, and each distinct certificate is
        validated once: a batch usually holds many transactions of few signers.
        """
        now = self.clock_ms()
        identities: dict[bytes, Identity | IdentityError] = {}
        checked: list[Admitted | AdmissionError] = []
        jobs: list[VerifyJob] = []
        for raw in raws:
            try:
                admitted = self._check(raw, now, identities)
            except AdmissionError as exc:
                checked.append(exc)
                continue
            checked.append(admitted)
            if admitted.job is not None:
                jobs.append(admitted.job)
        return checked, jobs

    def _check(self, raw: bytes, now: int, identities: dict[bytes, Identity | IdentityError]) -> Admitted:
        """`identities` holds the validation results of certificates met earlier in this
        batch (validation is a pure function of the certificate, `now` and the config)."""
        try:
            kind = tx_kind(raw)
        except CodecError as exc:
            raise AdmissionError(f"malformed transaction: {exc}", "malformed") from exc
        if kind == "eth":
            return self._check_eth(raw)
        env, tx = parse_envelope(raw)
        cfg = self.config
        if tx.chain_id != cfg.chain_id:
            raise AdmissionError(
                f"wrong chain id {tx.chain_id!r}; this network is {cfg.chain_id!r}", "wrong_chain"
            )
        if tx.channel != cfg.channel:
            raise AdmissionError(f"unknown channel {tx.channel!r}", "wrong_channel")
        identity = identities.get(tx.signer)
        if identity is None:
            try:
                identity = self.msp.validate(tx.signer, now)
            except IdentityError as exc:
                identity = exc
            identities[tx.signer] = identity
        if isinstance(identity, IdentityError):
            raise AdmissionError(str(identity), identity.code) from identity
        if tx.expiry_height and tx.expiry_height <= self.ledger.height:
            raise AdmissionError(f"transaction expired at height {tx.expiry_height}", "expired")
        tx_id = env.tx_id
        if tx_id in self.mempool or tx_id in self.committed:
            raise AdmissionError("transaction already submitted (replay)", "duplicate_transaction")
        job = VerifyJob(identity.suite, identity.public_key, tx_signing_bytes(tx_id), env.signature)
        return Admitted(tx_id, raw, tx, identity.caller.cert_hash, job)

    def _check_eth(self, raw: bytes) -> Admitted:
        cfg = self.config
        tx = parse_eth_transaction(raw, eth_chain_id_of(cfg))
        sender = f"0x{tx.sender.hex()}"
        state = self.ledger.state
        if permitted_org(state, tx.sender) is None:
            raise AdmissionError(f"account {sender} is not permitted to send transactions", "not_permitted")
        gas_max = tx_gas_limit(cfg)
        if tx.gas > gas_max:
            raise AdmissionError(f"gas limit {tx.gas} exceeds the maximum of {gas_max}", "gas_limit")
        if tx.hash in self.mempool or self.ledger.has_tx(tx.hash):
            raise AdmissionError("transaction already submitted (replay)", "duplicate_transaction")
        nonce = read_account(state, tx.sender).nonce
        if tx.nonce < nonce:
            raise AdmissionError(
                f"nonce too low: account {sender} is at nonce {nonce}, transaction has {tx.nonce}",
                "nonce_too_low",
            )
        return Admitted(tx.hash, raw, tx, tx.sender, None, nonce)

    def _admit(self, admitted: Admitted, signature_ok: bool, recheck: bool, remember: bool) -> None:
        """Pool a checked transaction. `recheck`: ask again whether it was committed (e.g.
        through a peer's block while its signature was checked); `remember`: record its
        checks for the blocks that will hold it. The pool refuses an id it holds."""
        if not signature_ok:
            raise AdmissionError(
                "signature does not verify against the signer's certificate", "bad_signature"
            )
        tx_id = admitted.tx_id
        if recheck and tx_id in self.committed:
            raise AdmissionError("transaction already submitted (replay)", "duplicate_transaction")
        tx = admitted.tx
        if isinstance(tx, EthTransaction):
            pooled = PooledTx(tx_id, admitted.raw, admitted.sender, tx.nonce, tx.gas)
        else:
            pooled = PooledTx(tx_id, admitted.raw, admitted.sender)
        try:
            dropped = self.mempool.add(pooled, admitted.account_nonce)
        except DuplicateTransaction as exc:
            raise AdmissionError("transaction already submitted (replay)", "duplicate_transaction") from exc
        except MempoolError as exc:
            raise AdmissionError(str(exc), exc.code) from exc
        if dropped:
            self._forget(dropped)
        self._pending[tx_id] = tx
        if remember and admitted.job is not None:
            # Another validator may propose it: remember the checks for when its block arrives.
            self.verified.add(admitted.raw, TxInput(tx_id, tx, True))

    def _forget(self, dropped: list[bytes]) -> None:
        """Ethereum transactions the pool dropped because their nonce was used by another."""
        for tx_id in dropped:
            self._pending.pop(tx_id, None)

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

    def eth_next_nonce(self, address: bytes) -> int:
        """The nonce an Ethereum account's next transaction should carry: its committed
        nonce plus its pending transactions that follow on without a gap."""
        return self.mempool.next_nonce(address, read_account(self.ledger.state, address).nonce)

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

    def pending_transaction(self, tx_id: bytes) -> Transaction | EthTransaction | None:
        """The decoded transaction `tx_id` while it waits in the pool, else None."""
        return self._pending.get(tx_id) if tx_id in self.mempool else None


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
