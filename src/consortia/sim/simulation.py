"""The deterministic driver: a fake clock, network and disks around real engines.

Time is an integer number of milliseconds. Everything that happens is an entry in one
priority queue ordered by (time, sequence number), so two runs with the same options pop
the same entries in the same order. The driver honours the engine contract exactly:
actions are performed in order; `Persist` and `CommitBlock` are durable the moment they
are performed (a crash can strike right after one, and the actions after it are lost);
answers (ProposalBuilt, ProposalExecuted, Committed) arrive after a simulated execution or
disk delay, so ticks and messages interleave with them as they would on a real node.

A run has two phases. In the fault phase the network misbehaves, nodes crash and restart
and byzantine nodes act. At the heal everything is repaired: links are clean, crashed
nodes restart and a few probe transactions are submitted. The liveness phase then requires
every honest node to commit every submitted transaction within the liveness bound.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass
from typing import Any

import msgspec

from consortia.consensus.interface import (
    Action,
    Broadcast,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    ExecuteProposal,
    PeerMessage,
    Persist,
    ProposalBuilt,
    ProposalExecuted,
    Send,
    Tick,
)
from consortia.sim.byzantine import Mutator, walk
from consortia.sim.checker import Checker
from consortia.sim.engines import LoadedEngine
from consortia.sim.network import FakeNetwork
from consortia.sim.node import FakeDisk, SimNode
from consortia.sim.options import BEYOND_MODEL_TAIL_MS, SimOptions
from consortia.sim.world import CertificateVerifier, Consortium, TxVerifier, build_block, check_block
from consortia.types import Block, CodecError, CommitCertificate, decode, encode

# Event kinds in the queue.
K_TICK, K_MSG, K_SYNC, K_ANSWER, K_SUBMIT, K_ARRIVE = range(6)
K_CRASH, K_CRASH_FORCE, K_RESTART, K_HEAL, K_SYNC_POLL, K_REPLAY, K_END = range(6, 13)

SYNC_BATCH_BLOCKS = 16
SYNC_REQUEST_GAP_MS = 50  # a node asks every peer for blocks at most this often
LOST_WRITE_WAIT_MS = 500  # an armed crash that sees no durable write strikes anyway
HISTORY_MAX = 32
HEIGHT_FIELDS = ("height", "seq")  # top-level message fields that name a block height


@dataclass(frozen=True)
class SyncRequest:
    from_height: int


@dataclass(frozen=True)
class SyncBlocks:
    blocks: tuple[Block, ...]


class Simulation:
    def __init__(self, options: SimOptions, engine: LoadedEngine):
        self.o = options
        self.engine = engine
        self.union = engine.message_union
        self.rng = random.Random(f"consortia/sim/run/{options.seed}")
        self.world = Consortium.create(options.seed, options.nodes, options.clients)
        self.txv = TxVerifier(self.world)
        self.quorum = engine.spec.quorum(options.nodes)
        self.certs = CertificateVerifier(self.world.peers, self.quorum)
        self.net = FakeNetwork(options, random.Random(f"consortia/sim/net/{options.seed}"))
        self.checker = Checker()
        self.now = 0
        self._queue: list[tuple[int, int, int, Any, Any, Any]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self.counts: dict[str, int] = {}
        self.engine_messages = 0
        self.heal_ms = options.fault_phase_ms
        self.beyond_model = options.beyond_model
        self.healed = False
        self.probes_sent = False
        self.recovery_ms: int | None = None
        self.submitted: dict[bytes, tuple[bytes, int]] = {}  # tx id -> (envelope, submit time)
        self._commits: dict[bytes, int] = {}  # tx id -> honest nodes that committed it
        self.latencies: list[int] = []
        self._armed_plan: dict[int, int] = {}  # node index -> crash plan waiting for a write
        self.nodes = self._make_nodes()
        self.instances: dict[str, list[SimNode]] = {}
        for n in self.nodes:
            self.instances.setdefault(n.name, []).append(n)
        honest = sum(1 for n in self.nodes if n.honest)
        self._honest_sender = {n.name: n.honest for n in self.nodes}
        self._majority = min(honest, options.nodes // 2 + 1)

    # ---- set-up ------------------------------------------------------------------------------
    def _make_nodes(self) -> list[SimNode]:
        o = self.o
        plans = {p.node: p for p in o.byzantine_plans}
        out: list[SimNode] = []
        for i, name in enumerate(self.world.names):
            plan = plans.get(i)
            twins = (0, 1) if plan is not None and "twins" in plan.behaviours else (None,)
            for twin in twins:
                node = SimNode(len(out), i, name, twin, plan is None, FakeDisk(self.world.genesis))
                # A twin's clock is a little off its sibling's, so the two build different blocks.
                node.clock_offset_ms = o.clock_offset_ms[i] + (7 if twin == 1 else 0)
                node.tick_ms = o.slow_tick_ms if i in o.slow_nodes else o.tick_ms
                if plan is not None:
                    node.mutator = Mutator(plan, random.Random(f"consortia/sim/byz/{o.seed}/{node.label}"))
                out.append(node)
        return out

    def _setup(self, node: SimNode) -> EngineSetup:
        return EngineSetup(
            node_id=node.name,
            peers=self.world.peers,
            signer=self.world.signers[node.node],
            limits=self.o.limits,
            height=node.height,
            head=node.head.hash,
            seed=self.o.seed * 1_000 + node.node,
            persisted=dict(node.disk.persisted),
            commit_quorum=self.quorum,
        )

    # ---- the queue -------------------------------------------------------------------------
    def at(self, time_ms: int, kind: int, a: Any = None, b: Any = None, c: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time_ms, self._seq, kind, a, b, c))

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def trace(self, *parts: Any) -> None:
        self._trace.update(encode((self.now, *parts)))

    @property
    def trace_hash(self) -> str:
        return self._trace.hexdigest()

    def run(self) -> None:
        o = self.o
        for node in self.nodes:
            self._start(node, first=True)
        for i, t in enumerate(o.submit_ms):
            self.at(t, K_SUBMIT, i)
        for k, plan in enumerate(o.crashes):
            self.at(plan.at_ms, K_CRASH, k)
        self.at(self.heal_ms, K_HEAL)
        tail = BEYOND_MODEL_TAIL_MS if o.beyond_model else o.liveness_bound_ms
        self.at(self.heal_ms + tail, K_END)
        queue = self._queue
        while queue:
            t, _, kind, a, b, c = heapq.heappop(queue)
            self.now = t
            if kind == K_END or self.recovery_ms is not None:
                break
            if self.beyond_model and self.checker.violations:
                break  # the point of such a run is made; the rest would cost time only
            self._dispatch(kind, a, b, c)
        self._finish()

    def _dispatch(self, kind: int, a: Any, b: Any, c: Any) -> None:
        if kind == K_TICK:
            node = self.nodes[a]
            if node.up and node.incarnation == b:
                txs, size = node.pending()
                self.step(node, Tick(self.now + node.clock_offset_ms, txs, size))
                self.at(self.now + node.tick_ms, K_TICK, a, b)
        elif kind == K_MSG:
            self._deliver(self.nodes[a], b, c)
        elif kind == K_ANSWER:
            node = self.nodes[a]
            if node.up and node.incarnation == b:
                self.step(node, c)
        elif kind == K_SYNC:
            self._on_sync(self.nodes[a], b, c)
        elif kind == K_SUBMIT:
            self._submit(a)
        elif kind == K_ARRIVE:
            node = self.nodes[a]
            if node.up:
                node.add_to_pool(b, self.submitted[b][0])
        elif kind == K_SYNC_POLL:
            node = self.nodes[a]
            if node.up and node.incarnation == b:
                self._sync_poll(node)
                self.at(self.now + self.o.sync_every_ms, K_SYNC_POLL, a, b)
        elif kind == K_REPLAY:
            self._replay(self.nodes[a], b)
        elif kind == K_CRASH:
            self._on_crash_plan(a)
        elif kind == K_CRASH_FORCE:
            if not self.healed and any(n.crash_armed and n.up for n in self.instances[self.world.names[a]]):
                self._crash(a, self.o.crashes[b].down_ms, self.o.crashes[b].empty_disk)
        elif kind == K_RESTART:
            self._restart(a, b)
        elif kind == K_HEAL:
            self._heal()

    # ---- engine steps and actions ------------------------------------------------------------
    def step(self, node: SimNode, event: Event) -> None:
        engine = node.engine
        if engine is None:
            return
        self.trace(node.index, _event_record(event))
        try:
            actions = engine.step(event)
        except Exception as exc:  # an engine bug: report it, stop this instance
            self.checker.report("engine_error", node.label, self.now, f"{type(exc).__name__}: {exc}")
            node.failed = True
            self._stop(node)
            return
        if actions:
            self.perform(node, actions)

    def perform(self, node: SimNode, actions: list[Action]) -> None:
        for i, action in enumerate(actions):
            if not node.up:
                return
            self.trace(node.index, _action_record(action))
            durable = False
            if isinstance(action, Send):
                self._send(node, action.to, action.message)
            elif isinstance(action, Broadcast):
                self._send(node, None, action.message)
            elif isinstance(action, Persist):
                if action.value is None:
                    node.disk.persisted.pop(action.key, None)
                else:
                    node.disk.persisted[action.key] = action.value
                durable = True
            elif isinstance(action, BuildProposal):
                self._build(node, action)
            elif isinstance(action, ExecuteProposal):
                self._execute(node, action.block)
            elif isinstance(action, CommitBlock):
                self._commit(node, action.block, action.certificate)
                durable = True
            if durable and node.crash_armed:
                lost = len(actions) - i - 1
                self.count("lost_write_crashes" if lost else "armed_crashes_nothing_lost")
                self.count("actions_lost_at_crash", lost)
                plan = self._armed_plan[node.node]
                self._crash(node.node, self.o.crashes[plan].down_ms, self.o.crashes[plan].empty_disk)
                return

    def _answer(self, node: SimNode, delay: int, event: Event) -> None:
        self.at(self.now + delay, K_ANSWER, node.index, node.incarnation, event)

    # ---- proposals ---------------------------------------------------------------------------
    def _build(self, node: SimNode, action: BuildProposal) -> None:
        parent = node.header_of(action.parent_hash)
        excluded = node.ancestor_txs(action.parent_hash) if parent is not None else None
        if parent is None or excluded is None or action.height != parent.height + 1:
            self.count("builds_on_unknown_parent")
            self._request_sync(node)
            return
        limits = self.o.limits
        picked: list[tuple[bytes, bytes]] = []
        size = 0
        for tx_id, raw in node.pool.items():
            if len(picked) >= limits.txs_max or size + len(raw) > limits.bytes_max:
                break
            if tx_id in excluded or node.chain_txs.get(tx_id, 1 << 62) <= parent.height:
                continue
            picked.append((tx_id, raw))
            size += len(raw)
        block = build_block(
            parent, action.height, self.now + node.clock_offset_ms, node.name, picked, action.engine_data
        )
        node.remember(block.header, [t[0] for t in picked])
        self.count("blocks_built")
        self._answer(node, self._exec_delay(len(picked)), ProposalBuilt(block))

    def _exec_delay(self, txs: int) -> int:
        return self.o.exec_ms + txs * self.o.exec_us_per_tx // 1000

    def _validate(self, node: SimNode, block: Block) -> tuple[str | None, list[bytes]]:
        """Execute `block` on its (known) parent: (None, tx ids) or (reason, [])."""
        parent = node.header_of(block.header.parent_hash)
        if parent is None:
            return "unknown parent", []
        reason, ids = check_block(block, parent, self.txv, self.world.names)
        if reason is not None:
            return reason, []
        excluded = node.ancestor_txs(parent.hash) or set()
        for tx_id in ids:
            if tx_id in excluded or node.chain_txs.get(tx_id, 1 << 62) <= parent.height:
                return "transaction already in the chain", []
        return None, ids

    def _execute(self, node: SimNode, block: Block) -> None:
        h = block.hash
        if h in node.known or h in node.chain_index:
            self._answer(node, self.o.exec_ms, ProposalExecuted(h, True))
            return
        if h in node.invalid:
            self._answer(node, self.o.exec_ms, ProposalExecuted(h, False))
            return
        if node.header_of(block.header.parent_hash) is None:
            # Behind: fetch the parent first, execute when it arrives.
            node.waiting.setdefault(block.header.parent_hash, []).append(block)
            self.count("executes_waiting_for_parent")
            self._request_sync(node)
            return
        reason, ids = self._validate(node, block)
        if reason is not None:
            node.invalid[h] = reason
            self.count("proposals_invalid")
        else:
            node.remember(block.header, ids)
        self._answer(node, self._exec_delay(len(block.txs)), ProposalExecuted(h, reason is None))
        if reason is None:
            self._release_waiting(node, h)

    def _release_waiting(self, node: SimNode, parent_hash: bytes) -> None:
        for child in node.waiting.pop(parent_hash, []):
            self._execute(node, child)

    # ---- commits -------------------------------------------------------------------------------
    def _commit(self, node: SimNode, block: Block, cert: CommitCertificate) -> None:
        height = block.header.height
        problem = self.certs.problem(block, cert)
        if problem is not None:
            if node.honest:
                self.checker.report("certificate", node.label, self.now, f"height {height}: {problem}")
            return
        if height <= node.height:
            mine = node.disk.chain[height]
            if mine.hash == block.hash:
                self._answer(node, self.o.disk_ms, Committed(height, block.hash))
            elif node.honest:
                self.checker.report(
                    "undone",
                    node.label,
                    self.now,
                    f"engine committed {block.hash.hex()[:12]} at height {height}, "
                    f"which already holds {mine.hash.hex()[:12]}",
                )
            return
        if height > node.height + 1:
            node.gap[height] = Block(block.header, block.txs, cert)
            self.count("commits_ahead_of_chain")
            self._request_sync(node)
            return
        if block.header.parent_hash != node.head.hash:
            if node.honest:
                self.checker.report(
                    "agreement", node.label, self.now, f"engine committed height {height} on another parent"
                )
            return
        reason, ids = self._validate(node, block)
        if reason is not None:
            if node.honest:
                self.checker.report("validity", node.label, self.now, f"height {height}: {reason}")
            return
        self._append(node, Block(block.header, block.txs, cert), ids)
        self._fill_gap(node)

    def _append(self, node: SimNode, block: Block, ids: list[bytes]) -> None:
        """Durable now; the engine hears Committed after the disk delay."""
        node.append(block, ids)
        height = block.header.height
        self.checker.on_durable(node.label, node.honest, height, block.hash, ids, self.now)
        self._answer(node, self.o.disk_ms, Committed(height, block.hash))
        if node.waiting:
            self._release_waiting(node, block.hash)
        if node.honest:
            for tx_id in ids:
                n = self._commits.get(tx_id, 0) + 1
                self._commits[tx_id] = n
                if n == self._majority:
                    self.latencies.append(self.now - self.submitted[tx_id][1])
            if self.healed:
                self._check_recovered()

    def _fill_gap(self, node: SimNode) -> None:
        while node.height + 1 in node.gap:
            block = node.gap.pop(node.height + 1)
            if block.header.parent_hash != node.head.hash:
                break
            reason, ids = self._validate(node, block)
            if reason is not None:
                break
            self._append(node, block, ids)

    # ---- network -------------------------------------------------------------------------------
    def _reachable(self, src: SimNode, dst: SimNode) -> bool:
        split = self.o.twins_split
        if split is None or self.healed or not split.start_ms <= self.now < split.end_ms:
            return True
        side_src = src.twin if src.twin is not None else split.sides[src.node]
        side_dst = dst.twin if dst.twin is not None else split.sides[dst.node]
        return side_src == side_dst

    def _transmit(self, src: SimNode, to: str, kind: int, payload: Any) -> None:
        for dst in self.instances.get(to, ()):
            if dst is src:
                continue
            if not self._reachable(src, dst):
                self.count("twins_split_dropped")
                continue
            for t in self.net.arrivals(src.node, dst.node, src.index, dst.index, self.now):
                self.at(t, kind, dst.index, src.name if kind == K_MSG else src.index, payload)

    def _send(self, node: SimNode, to: str | None, message: object) -> None:
        if to is not None and to not in self.instances:
            self.count("sends_to_unknown_peer")
            return
        others = [n for n in self.world.names if n != node.name]
        if node.mutator is not None:
            pairs = node.mutator.outgoing(to, message, others)
        else:
            pairs = [(to, message)] if to is not None else [(p, message) for p in others]
        raws: dict[int, bytes] = {}
        for dest, msg in pairs:
            key = id(msg)  # one encoding per distinct message object in this call
            raw = raws.get(key)
            if raw is None:
                try:
                    raw = encode(msg)
                except (TypeError, ValueError, msgspec.EncodeError) as exc:
                    if node.honest:
                        self.checker.report("bad_message", node.label, self.now, f"cannot encode: {exc}")
                    continue
                self._trace.update(raw)
                raws[key] = raw
            self.engine_messages += 1
            if node.mutator is not None:
                self._remember(node, raw)
            self._transmit(node, dest, K_MSG, raw)

    def _deliver(self, node: SimNode, sender: str, raw: bytes) -> None:
        if not node.up:
            return
        try:
            if self.union is None:
                raise CodecError("the engine declares no MESSAGE_TYPES")
            message = decode(raw, self.union)
        except CodecError as exc:
            self.count("undecodable_messages")
            if self._honest_sender.get(sender, False):
                # Checked on arrival rather than on send: decoding twice would double the cost.
                self.checker.report(
                    "bad_message", sender, self.now, f"peer {node.label} cannot decode: {exc}"
                )
            return
        if node.mutator is not None:
            self._remember(node, raw)
        self._trace.update(raw)
        for name in HEIGHT_FIELDS:
            # A message about a height past the next one: this node is behind, fetch blocks.
            height = getattr(message, name, None)
            if type(height) is int and height > node.height + 1:
                self._request_sync(node)
                break
        self.step(node, PeerMessage(sender, message))

    def _remember(self, node: SimNode, raw: bytes) -> None:
        node.history.append(raw)
        if len(node.history) > HISTORY_MAX:
            del node.history[0]

    def _replay(self, node: SimNode, incarnation: int) -> None:
        if not node.up or node.incarnation != incarnation or node.mutator is None:
            return
        if node.history:
            raw = self.rng.choice(node.history)
            to = self.rng.choice(self.world.names)
            if to != node.name:
                node.mutator.counts["replayed"] = node.mutator.counts.get("replayed", 0) + 1
                self.engine_messages += 1
                self._transmit(node, to, K_MSG, raw)
        self.at(self.now + node.mutator.plan.replay_every_ms, K_REPLAY, node.index, incarnation)

    # ---- block sync ------------------------------------------------------------------------------
    def _request_sync(self, node: SimNode) -> None:
        if self.now - node.last_sync_ms < SYNC_REQUEST_GAP_MS:
            return
        node.last_sync_ms = self.now
        for name in self.world.names:
            if name != node.name:
                self._sync_send(node, name, SyncRequest(node.height + 1))

    def _sync_poll(self, node: SimNode) -> None:
        """Ask one peer for blocks; ask all when the engine says it is behind.

        An engine may report `sync_height` in status() (the height it knows is committed
        elsewhere, e.g. after a Raft snapshot), as the node runtime reads it too.
        """
        engine = node.engine
        target = engine.status().get("sync_height", 0) if engine is not None else 0
        if isinstance(target, int) and target > node.height:
            self._request_sync(node)
            return
        peers = [n for n in self.world.names if n != node.name]
        if peers:
            self._sync_send(node, self.rng.choice(peers), SyncRequest(node.height + 1))

    def _sync_send(self, node: SimNode, to: str, message: SyncRequest | SyncBlocks) -> None:
        if node.mutator is not None and node.mutator.has("silence"):
            return
        self.count("sync_messages")
        self._transmit(node, to, K_SYNC, message)

    def _on_sync(self, node: SimNode, sender: int, message: SyncRequest | SyncBlocks) -> None:
        if not node.up:
            return
        self.trace(node.index, "sync", sender, type(message).__name__)
        if isinstance(message, SyncRequest):
            first = message.from_height
            mutator = node.mutator
            if mutator is not None and mutator.has("silence"):
                return
            if first <= node.height:
                blocks = tuple(node.disk.chain[first : first + SYNC_BATCH_BLOCKS])
                if mutator is not None and mutator.has("forge_cert"):
                    # Blocks served with forged certificates: the receiver must refuse them.
                    blocks = tuple(walk(b, mutator.forge) for b in blocks)
                src = self.nodes[sender]
                if self._reachable(node, src):
                    for t in self.net.arrivals(node.node, src.node, node.index, src.index, self.now):
                        self.count("sync_messages")
                        self.at(t, K_SYNC, src.index, node.index, SyncBlocks(blocks))
            return
        for block in message.blocks:
            if block.header.height != node.height + 1 or block.header.parent_hash != node.head.hash:
                continue
            if self.certs.problem(block, block.certificate) is not None:
                self.count("sync_blocks_refused")
                break
            reason, ids = self._validate(node, block)
            if reason is not None:
                self.count("sync_blocks_refused")
                break
            self.count("sync_blocks")
            self._append(node, block, ids)
        self._fill_gap(node)

    # ---- clients ---------------------------------------------------------------------------------
    def _submit(self, i: int) -> None:
        o = self.o
        tx_id, raw = self.world.make_tx(i % o.clients, i, self.rng.randbytes(16))
        self.submitted[tx_id] = (raw, self.now)
        self.trace("submit", tx_id)
        for node in self.nodes:
            self.at(self.now + self.rng.randint(1, 10), K_ARRIVE, node.index, tx_id)

    # ---- crashes -----------------------------------------------------------------------------------
    def _on_crash_plan(self, k: int) -> None:
        plan = self.o.crashes[k]
        name = self.world.names[plan.node]
        if self.healed or not all(n.up for n in self.instances[name]):
            self.count("crashes_skipped")
            return
        if plan.lost_write:
            for n in self.instances[name]:
                n.crash_armed = True
            self._armed_plan[plan.node] = k
            self.at(self.now + LOST_WRITE_WAIT_MS, K_CRASH_FORCE, plan.node, k)
            return
        self._crash(plan.node, plan.down_ms, plan.empty_disk)

    def _crash(self, node_index: int, down_ms: int, empty_disk: bool) -> None:
        self.count("crashes")
        self.trace("crash", node_index)
        for n in self.instances[self.world.names[node_index]]:
            self._stop(n)
        self.at(self.now + down_ms, K_RESTART, node_index, empty_disk)

    def _stop(self, node: SimNode) -> None:
        node.up = False
        node.incarnation += 1
        node.forget()

    def _restart(self, node_index: int, empty_disk: bool) -> None:
        for node in self.instances[self.world.names[node_index]]:
            if node.up or node.failed:
                continue
            if empty_disk:
                node.disk.wipe()
                self.checker.on_disk_lost(node.label)
                self.count("empty_disk_restarts")
            node.forget()  # indexes rebuilt from what the disk really holds
            self.checker.check_durable(node.label, node.chain_txs, self.now)
            self.count("restarts")
            self._start(node, first=False)

    def _start(self, node: SimNode, first: bool) -> None:
        self.trace("start", node.index)
        try:
            engine = self.engine.factory(self._setup(node))
        except Exception as exc:  # e.g. the engine refuses the state it persisted itself
            self.checker.report("engine_error", node.label, self.now, f"start: {type(exc).__name__}: {exc}")
            node.failed = True
            return
        node.up = True
        node.engine = engine
        for tx_id, (raw, _t) in self.submitted.items():
            node.add_to_pool(tx_id, raw)  # clients retry what a node lost with its memory
        offset = self.rng.randrange(node.tick_ms)
        self.at(self.now + offset, K_TICK, node.index, node.incarnation)
        self.at(self.now + offset + 1, K_SYNC_POLL, node.index, node.incarnation)
        if node.mutator is not None and node.mutator.has("replay"):
            self.at(self.now + offset + 2, K_REPLAY, node.index, node.incarnation)
        if not first:
            self._request_sync(node)

    # ---- phases ------------------------------------------------------------------------------------
    def _heal(self) -> None:
        self.healed = True
        self.net.healed = True
        self.trace("heal")
        for name, nodes in self.instances.items():
            if any(not n.up and not n.failed for n in nodes):
                self._restart(self.world.names.index(name), False)
        for n in self.nodes:
            n.crash_armed = False
        if self.o.beyond_model:
            return  # beyond the fault model only safety is checked
        base = len(self.o.submit_ms)
        for k in range(self.o.probe_txs):
            self._submit(base + k)
        self.probes_sent = True
        self._check_recovered()

    def _check_recovered(self) -> None:
        if not self.probes_sent or self.recovery_ms is not None:
            return
        total = len(self.submitted)
        for n in self.nodes:
            if n.honest and (n.failed or len(n.chain_txs) < total):
                return
        self.recovery_ms = self.now - self.heal_ms

    def _finish(self) -> None:
        for n in self.nodes:
            if n.honest and n.up:
                self.checker.check_durable(n.label, n.chain_txs, self.now)
        if not self.o.beyond_model and self.recovery_ms is None:
            behind = [
                n.label
                for n in self.nodes
                if n.honest and (n.failed or len(n.chain_txs) < len(self.submitted))
            ]
            self.checker.report(
                "liveness",
                ",".join(behind) or "-",
                self.now,
                f"not every transaction committed {self.o.liveness_bound_ms} ms after the heal",
            )


def _event_record(event: Event) -> tuple[Any, ...]:
    if isinstance(event, Tick):
        return ("tick", event.now_ms, event.pending_txs)
    if isinstance(event, PeerMessage):
        return ("msg", event.sender)  # the message bytes were traced when sent
    if isinstance(event, ProposalBuilt):
        return ("built", event.block.hash)
    if isinstance(event, ProposalExecuted):
        return ("executed", event.block_hash, event.valid)
    return ("committed", event.height, event.block_hash)


def _action_record(action: Action) -> tuple[Any, ...]:
    if isinstance(action, Send):
        return ("send", action.to)  # the bytes are traced as they leave
    if isinstance(action, Broadcast):
        return ("broadcast",)
    if isinstance(action, Persist):
        return ("persist", action.key, action.value)
    if isinstance(action, BuildProposal):
        return ("build", action.height, action.parent_hash, action.engine_data)
    if isinstance(action, ExecuteProposal):
        return ("execute", action.block.hash)
    return ("commit", action.block.hash, len(action.certificate.signatures))
