"""A small in-test Raft cluster: engines, a message queue, fake blocks and fake ledgers.

The harness plays the driver for every node: it performs actions in order (Persist into a
dict, Send onto a shared queue, BuildProposal with a deterministic fake block, CommitBlock
into a list ledger followed by Committed), and checks safety as it goes: no two nodes ever
commit different blocks at one height, and every ledger is a hash chain. Everything it
does is printed in a compact, readable form for transcripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consortia.consensus import (
    Action,
    BlockSigner,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    Peer,
    PeerMessage,
    Persist,
    ProposalBuilt,
    Send,
    Tick,
)
from consortia.consensus.raft import RaftEngine
from consortia.consensus.raft_log import ENTRY_PREFIX, HARD_KEY, SNAP_KEY, HardState, SnapshotMeta
from consortia.consensus.raft_messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    RequestVote,
    RequestVoteResponse,
)
from consortia.crypto import ED25519, ZERO_HASH, PrivateKey, sha256
from consortia.types import Block, BlockLimits, Header, decode

GENESIS = sha256(b"genesis")
TXS_MAX = 100


class SafetyViolation(AssertionError):
    """Two nodes committed different blocks at one height, or a ledger does not chain."""


def key_of(name: str) -> PrivateKey:
    return ED25519.private_from_bytes(sha256(b"raft-test-key/" + name.encode()))


def peer_of(name: str) -> Peer:
    return Peer(name, f"org-{name}", b"cert:" + name.encode(), ED25519.name, key_of(name).public_key)


def seed_of(name: str) -> int:
    return int.from_bytes(sha256(b"seed/" + name.encode())[:4], "big")


@dataclass
class Node:
    name: str
    peers: tuple[str, ...]  # the validator set it was started with
    engine: RaftEngine | None = None
    persisted: dict[str, bytes] = field(default_factory=dict)
    ledger: list[Block] = field(default_factory=list)  # ledger[h - 1] is the block at height h
    pool: int = 0
    now: int = 0
    pending_config: tuple[str, ...] | None = None

    @property
    def height(self) -> int:
        return len(self.ledger)

    @property
    def head(self) -> bytes:
        return self.ledger[-1].hash if self.ledger else GENESIS


class Cluster:
    def __init__(
        self,
        names: Iterable[str],
        params: dict[str, int | str] | None = None,
        commit_quorum: int = 1,
        echo: bool = True,
    ) -> None:
        self.params: dict[str, int | str] = dict(params or {})
        self.commit_quorum = commit_quorum
        self.echo = echo
        self.tx_bytes = 0  # size of each fake transaction in built blocks
        self.lines: list[str] = []
        self.nodes: dict[str, Node] = {}
        self.queue: list[tuple[str, str, object]] = []
        self.cut: set[frozenset[str]] = set()
        self.committed: dict[int, bytes] = {}
        self.labels: dict[bytes, str] = {GENESIS: "genesis"}
        self.config_blocks: dict[bytes, tuple[str, ...]] = {}
        self.genesis: tuple[str, ...] = tuple(sorted(names))
        self.config = self.genesis  # the latest validator set any node committed
        for name in self.genesis:
            self.start(name)

    # ---- output --------------------------------------------------------------------------
    def say(self, line: str) -> None:
        if self.echo:
            self.lines.append(line)

    def take_output(self) -> list[str]:
        out, self.lines = self.lines, []
        return out

    def label(self, block_hash: bytes) -> str:
        return self.labels.get(block_hash, block_hash[:4].hex())

    # ---- node lifecycle -----------------------------------------------------------------
    def setup(self, node: Node) -> EngineSetup:
        return EngineSetup(
            node_id=node.name,
            peers=tuple(peer_of(n) for n in node.peers),
            signer=BlockSigner(b"cert:" + node.name.encode(), key_of(node.name)),
            limits=BlockLimits(txs_max=TXS_MAX),
            height=node.height,
            head=node.head,
            seed=seed_of(node.name),
            persisted=dict(node.persisted),
            params=self.params,
            commit_quorum=self.commit_quorum,
        )

    def config_of(self, ledger: list[Block]) -> tuple[str, ...]:
        """The validator set in force after the last block of `ledger`, as a driver reads it."""
        names = self.genesis
        for block in ledger:
            names = self.config_blocks.get(block.hash, names)
        return names

    def start(self, name: str) -> None:
        """Start (or restart) a node with the validator set of its own ledger."""
        node = self.nodes.get(name) or Node(name, ())
        node.peers = self.config_of(node.ledger)
        self.nodes[name] = node
        node.engine = RaftEngine.from_setup(self.setup(node))
        self.step(name, Tick(node.now, node.pool))

    def crash(self, name: str) -> None:
        self.nodes[name].engine = None
        self.queue = [q for q in self.queue if q[1] != name]

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        if node.engine is not None:
            raise ValueError(f"{name} is running")
        self.start(name)

    def engine(self, name: str) -> RaftEngine:
        engine = self.nodes[name].engine
        if engine is None:
            raise AssertionError(f"{name} is down")
        return engine

    def alive(self) -> list[str]:
        return [n for n, node in sorted(self.nodes.items()) if node.engine is not None]

    # ---- network -------------------------------------------------------------------------
    def partition(self, groups: list[list[str]]) -> None:
        self.cut = set()
        for i, a in enumerate(groups):
            for b in groups[i + 1 :]:
                for x in a:
                    for y in b:
                        self.cut.add(frozenset((x, y)))

    def heal(self) -> None:
        self.cut = set()

    def deliver(self, to: str | None = None, frm: str | None = None, limit: int | None = None) -> int:
        """Deliver the queued messages that match (not those they cause); returns how many."""
        batch: list[tuple[str, str, object]] = []
        rest: list[tuple[str, str, object]] = []
        for item in self.queue:
            match = (to is None or item[1] == to) and (frm is None or item[0] == frm)
            if match and (limit is None or len(batch) < limit):
                batch.append(item)
            else:
                rest.append(item)
        self.queue = rest
        for sender, dest, message in batch:
            node = self.nodes.get(dest)
            if node is None or node.engine is None or frozenset((sender, dest)) in self.cut:
                self.say(f"drop {sender}->{dest} {self.fmt(message)}")
                continue
            self.step(dest, PeerMessage(sender, message))
        return len(batch)

    def drop(self, to: str | None = None, frm: str | None = None) -> None:
        kept = []
        for item in self.queue:
            if (to is None or item[1] == to) and (frm is None or item[0] == frm):
                self.say(f"drop {item[0]}->{item[1]} {self.fmt(item[2])}")
            else:
                kept.append(item)
        self.queue = kept

    def stabilize(self, rounds: int = 100) -> None:
        for _ in range(rounds):
            if not self.deliver():
                return
        raise AssertionError("cluster did not stabilize")

    # ---- driving ---------------------------------------------------------------------------
    def tick(self, name: str, ms: int) -> None:
        node = self.nodes[name]
        node.now += ms
        if node.engine is not None:
            self.step(name, Tick(node.now, node.pool))

    def step(self, name: str, event: Event) -> None:
        node = self.nodes[name]
        assert node.engine is not None
        self.perform(node, node.engine.step(event))

    def perform(self, node: Node, actions: list[Action]) -> None:
        queue = list(actions)
        persists: list[Persist] = []
        while queue:
            action = queue.pop(0)
            if isinstance(action, Persist):
                persists.append(action)
                if action.value is None:
                    node.persisted.pop(action.key, None)
                else:
                    node.persisted[action.key] = action.value
                continue
            self._say_persists(node.name, persists)
            persists = []
            engine = node.engine
            assert engine is not None
            if isinstance(action, Send):
                self.say(f"{node.name}->{action.to} {self.fmt(action.message)}")
                self.queue.append((node.name, action.to, action.message))
            elif isinstance(action, BuildProposal):
                block = self.make_block(node, action)
                self.say(f"{node.name} build {self.label(block.hash)} txs={block.header.tx_count}")
                queue.extend(engine.step(ProposalBuilt(block)))
            elif isinstance(action, CommitBlock):
                queue.extend(self.commit(node, action))
            else:
                raise AssertionError(f"unexpected action {action!r}")
        self._say_persists(node.name, persists)

    def make_block(self, node: Node, action: BuildProposal) -> Block:
        term = decode(action.engine_data, int)
        txs = min(node.pool, TXS_MAX)
        node.pool -= txs
        tag = f"{node.name}/{action.height}/{term}".encode()
        header = Header(
            chain_id="c",
            channel="main",
            height=action.height,
            parent_hash=action.parent_hash,
            timestamp_ms=action.height,
            proposer=node.name,
            tx_root=sha256(b"tx/" + tag),
            state_root=sha256(b"state/" + tag),
            receipts_root=ZERO_HASH,
            tx_count=txs,
            engine=action.engine_data,
        )
        block = Block(header, [b"t" * self.tx_bytes] * txs if self.tx_bytes else [])
        self.labels[block.hash] = f"b{action.height}/t{term}"
        if node.pending_config is not None:
            self.config_blocks[block.hash] = node.pending_config
            node.pending_config = None
        return block

    def commit(self, node: Node, action: CommitBlock) -> list[Action]:
        engine = node.engine
        assert engine is not None
        block, cert = action.block, action.certificate
        h = block.header.height
        signers = sorted(s.signer.decode().removeprefix("cert:") for s in cert.signatures)
        self.say(f"{node.name} COMMIT {self.label(block.hash)} cert=[{' '.join(signers)}]")
        if cert.block_hash != block.hash or cert.height != h:
            raise SafetyViolation(f"{node.name}: certificate for another block")
        if h != node.height + 1 or block.header.parent_hash != node.head:
            raise SafetyViolation(f"{node.name}: block {h} does not extend its ledger at {node.height}")
        self.record(node, block)
        out = engine.step(Committed(h, block.hash))
        return out + self.maybe_reconfigure(node, block)

    def record(self, node: Node, block: Block) -> None:
        h = block.header.height
        seen = self.committed.setdefault(h, block.hash)
        if seen != block.hash:
            raise SafetyViolation(
                f"{node.name} committed {self.label(block.hash)} at {h}, another node {self.label(seen)}"
            )
        node.ledger.append(block)

    def maybe_reconfigure(self, node: Node, block: Block) -> list[Action]:
        names = self.config_blocks.get(block.hash)
        if names is None or node.engine is None:
            return []
        self.config = names
        self.say(f"{node.name} reconfigure {' '.join(names)}")
        return node.engine.reconfigure(tuple(peer_of(n) for n in names))

    def sync(self, name: str, source: str | None = None) -> None:
        """Block sync: copy the certified blocks `name` lacks, then one Committed for the tip."""
        node = self.nodes[name]
        src = self.nodes[source] if source else max(self.nodes.values(), key=lambda n: n.height)
        blocks = src.ledger[node.height :]
        if not blocks:
            self.say(f"{name} sync: nothing to fetch")
            return
        self.say(f"{name} sync {self.label(blocks[0].hash)}..{self.label(blocks[-1].hash)} from {src.name}")
        for block in blocks:
            self.record(node, block)
        if node.engine is None:
            return
        tip = blocks[-1]
        actions = node.engine.step(Committed(tip.header.height, tip.hash))
        for block in blocks:
            actions += self.maybe_reconfigure(node, block)
        self.perform(node, actions)

    # ---- formatting ------------------------------------------------------------------------
    def _say_persists(self, name: str, persists: list[Persist]) -> None:
        if not persists:
            return
        parts: list[str] = []
        for p in persists:
            if p.key == HARD_KEY and p.value is not None:
                hard = decode(p.value, HardState)
                parts.append(f"hard=t{hard.term}/{hard.vote or '-'}")
            elif p.key == SNAP_KEY and p.value is not None:
                snap = decode(p.value, SnapshotMeta)
                parts.append(f"snap={snap.index}/{snap.term}:{self.label(snap.block_hash)}")
            elif p.key.startswith(ENTRY_PREFIX):
                index = int(p.key[len(ENTRY_PREFIX) :])
                if p.value is None:
                    parts.append(f"-{index}")
                else:
                    parts.append(f"+{index}:{self.fmt_entry(decode(p.value, Entry))}")
            else:
                parts.append(f"{p.key}={'del' if p.value is None else 'set'}")
        self.say(f"{name} persist {' '.join(parts)}")

    def fmt_entry(self, e: Entry) -> str:
        return f"t{e.term}:{'noop' if e.block is None else self.label(e.block.hash)}"

    def fmt(self, m: object) -> str:
        if isinstance(m, RequestVote):
            kind = "prevote" if m.pre_vote else "vote"
            return f"{kind} t{m.term} last={m.last_index}/{m.last_term}"
        if isinstance(m, RequestVoteResponse):
            kind = "prevote-resp" if m.pre_vote else "vote-resp"
            return f"{kind} t{m.term} {'granted' if m.granted else 'rejected'}"
        if isinstance(m, AppendEntries):
            s = f"ae t{m.term} prev={m.prev_index}/{m.prev_term} commit={m.commit_index}"
            if m.entries:
                s += " ents=[" + " ".join(self.fmt_entry(e) for e in m.entries) + "]"
            if m.certs:
                s += " certs=[" + " ".join(self.label(c.block_hash) for c in m.certs) + "]"
            return s
        if isinstance(m, AppendEntriesResponse):
            if m.success:
                s = f"ae-ok t{m.term} match={m.index} height={m.committed_height}"
                if m.signatures:
                    s += " sigs=[" + " ".join(str(a.height) for a in m.signatures) + "]"
                return s
            return f"ae-reject t{m.term} index={m.index} hint={m.hint} height={m.committed_height}"
        if isinstance(m, InstallSnapshot):
            return f"snapshot t{m.term} at={m.index}/{m.snap_term} block={self.label(m.block_hash)}"
        return repr(m)

    def status_line(self, name: str) -> str:
        node = self.nodes[name]
        if node.engine is None:
            return f"{name} crashed height={node.height}"
        s = node.engine.status()
        line = (
            f"{name} {s['role']} term={s['term']} leader={s['leader'] or '-'} height={s['height']}"
            f" commit={s['commit_index']} last={s['last_index']} log_len={s['log_len']}"
        )
        if s["sync_height"]:
            line += f" sync_height={s['sync_height']}"
        if s["dropped_msgs"]:
            line += f" dropped={s['dropped_msgs']}"
        return line

    def log_line(self, name: str) -> str:
        engine = self.nodes[name].engine
        assert engine is not None
        log = engine.log
        entries = [
            f"{i}/{self.fmt_entry(log.entry(i))}" for i in range(log.base.index + 1, log.last_index + 1)
        ]
        return f"{name} log base={log.base.index}/{log.base.term} [{' '.join(entries)}]"

    def check_chains(self) -> None:
        for node in self.nodes.values():
            parent = GENESIS
            for h, block in enumerate(node.ledger, start=1):
                if block.header.height != h or block.header.parent_hash != parent:
                    raise SafetyViolation(f"{node.name}'s ledger breaks at {h}")
                parent = block.hash
