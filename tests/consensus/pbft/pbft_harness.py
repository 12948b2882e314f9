"""A small in-memory PBFT cluster: fake blocks, a lossy network, crashes, byzantine senders.

The harness is the driver: it answers BuildProposal / ExecuteProposal / CommitBlock at once,
keeps each node's committed chain and persisted keys, and checks on every commit that the
certificate verifies and that no two nodes ever commit different blocks at one height.
Each action is also rendered as one line of text, which the transcript tests compare.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from consortia.consensus.interface import (
    Action,
    BlockSigner,
    Broadcast,
    BuildProposal,
    CommitBlock,
    Committed,
    EngineSetup,
    Event,
    ExecuteProposal,
    Peer,
    PeerMessage,
    Persist,
    ProposalBuilt,
    ProposalExecuted,
    Send,
    Tick,
)
from consortia.consensus.pbft import PbftEngine, verify_commit_certificate
from consortia.consensus.pbft_messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
    checkpoint_bytes,
    commit_bytes,
    prepare_bytes,
    preprepare_bytes,
)
from consortia.crypto import ED25519, ZERO_HASH, PrivateKey, sha256
from consortia.types import Block, BlockLimits, Header, commit_signing_bytes, encode

GENESIS = ZERO_HASH
TX_BYTES = 100


def node_key(name: str) -> PrivateKey:
    return ED25519.private_from_bytes(sha256(b"pbft-test-key/" + name.encode()))


def cert_der(name: str) -> bytes:
    return b"cert:" + name.encode()


def make_peer(name: str) -> Peer:
    return Peer(name, "org-" + name, cert_der(name), ED25519.name, node_key(name).public_key)


def fake_state_root(parent: bytes, height: int, tx_count: int) -> bytes:
    return sha256(b"state" + parent + height.to_bytes(8, "big") + tx_count.to_bytes(8, "big"))


def make_block(
    height: int,
    parent: bytes,
    proposer: str,
    timestamp_ms: int,
    tx_count: int,
    engine: bytes,
    valid: bool = True,
) -> Block:
    root = fake_state_root(parent, height, tx_count) if valid else sha256(b"wrong")
    header = Header(
        "test-chain",
        "main",
        height,
        parent,
        timestamp_ms,
        proposer,
        ZERO_HASH,
        root,
        ZERO_HASH,
        tx_count,
        engine,
    )
    return Block(header, [])


def block_valid(block: Block) -> bool:
    h = block.header
    return h.state_root == fake_state_root(h.parent_hash, h.height, h.tx_count)


def short(digest: bytes) -> str:
    return digest.hex()[:4]


def describe(message: object) -> str:
    if isinstance(message, PrePrepare):
        extra = " +block" if message.block is not None else ""
        return f"pre-prepare v{message.view} s{message.seq} {short(message.digest)}{extra}"
    if isinstance(message, Prepare):
        return f"prepare v{message.view} s{message.seq} {short(message.digest)}"
    if isinstance(message, Commit):
        return f"commit v{message.view} s{message.seq} {short(message.digest)}"
    if isinstance(message, Checkpoint):
        return f"checkpoint s{message.seq} {short(message.digest)}"
    if isinstance(message, ViewChange):
        certs = ",".join(f"{c.seq}:{short(c.digest)}@v{c.view}" for c in message.prepared)
        blocks = f" blocks={len(message.blocks)}" if message.blocks else ""
        return f"view-change v{message.new_view} stable={message.stable.seq} P=[{certs}]{blocks}"
    if isinstance(message, NewView):
        vcs = ",".join(vc.replica for vc in message.view_changes)
        o_set = ",".join(f"{p.seq}:{short(p.digest)}" for p in message.pre_prepares)
        return f"new-view v{message.view} V=[{vcs}] O=[{o_set}]"
    return type(message).__name__


@dataclass
class Node:
    name: str
    engine: PbftEngine | None
    persisted: dict[str, bytes] = field(default_factory=dict)
    chain: list[Block] = field(default_factory=list)  # committed blocks, height 1 first
    pool: int = 0  # pending transactions
    byzantine: bool = False

    @property
    def height(self) -> int:
        return len(self.chain)

    @property
    def head(self) -> bytes:
        return self.chain[-1].hash if self.chain else GENESIS


class SafetyViolation(AssertionError):
    pass


class Cluster:
    def __init__(
        self,
        n: int = 4,
        params: dict[str, int] | None = None,
        commit_quorum: int = 1,
        txs_max: int = 10,
        wait_ms: int = 0,
        names: list[str] | None = None,
    ) -> None:
        self.names = sorted(names or [f"n{i}" for i in range(n)])
        self.peers = tuple(make_peer(name) for name in self.names)
        self.params: dict[str, int] = dict(params or {})
        self.commit_quorum = commit_quorum
        self.limits = BlockLimits(txs_max=txs_max, bytes_max=txs_max * TX_BYTES * 10, wait_ms=wait_ms)
        self.now = 0
        self.nodes = {name: Node(name, None) for name in self.names}
        for node in self.nodes.values():
            node.engine = self._engine(node)
        self.queue: deque[tuple[str, str, object]] = deque()
        self.groups: list[set[str]] | None = None
        self.silenced: set[str] = set()
        self.lines: list[str] = []
        self.sent_log: list[tuple[str, object]] = []  # every message any replica sent
        self.decided: dict[int, bytes] = {}  # height -> the one block hash any node committed
        self.auto_sync = False
        self.on_commit: Callable[[str, Block], None] | None = None

    # ---- nodes ----------------------------------------------------------------------
    def setup(self, node: Node) -> EngineSetup:
        return EngineSetup(
            node_id=node.name,
            peers=self.peers,
            signer=BlockSigner(cert_der(node.name), node_key(node.name)),
            limits=self.limits,
            height=node.height,
            head=node.head,
            persisted=dict(node.persisted),
            params=dict(self.params),
            commit_quorum=self.commit_quorum,
        )

    def _engine(self, node: Node) -> PbftEngine:
        return PbftEngine.from_setup(self.setup(node))

    def engine(self, name: str) -> PbftEngine:
        engine = self.nodes[name].engine
        assert engine is not None, f"{name} is down"
        return engine

    def honest(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.byzantine]

    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.engine is not None and not n.byzantine]

    def crash(self, name: str) -> None:
        self.nodes[name].engine = None

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        node.engine = self._engine(node)

    def make_byzantine(self, name: str) -> None:
        """The node stops running its engine; tests speak for it with `inject`."""
        self.nodes[name].engine = None
        self.nodes[name].byzantine = True

    # ---- the driver ---------------------------------------------------------------------
    def feed(self, name: str, event: Event) -> None:
        node = self.nodes[name]
        pending: deque[Event] = deque([event])
        while pending and node.engine is not None:
            actions = node.engine.step(pending.popleft())
            for action in actions:
                answer = self._perform(node, action)
                if answer is not None:
                    pending.append(answer)

    def _perform(self, node: Node, action: Action) -> Event | None:
        name = node.name
        if isinstance(action, Persist):
            key = action.key.removeprefix("pbft/")
            if key.startswith("slot/"):
                key = "slot/" + str(int(key[5:]))
            elif key.startswith("block/"):
                seq, digest = key[6:].split("/")
                key = f"block/{int(seq)}/{digest[:4]}"
            if action.value is None:
                node.persisted.pop(action.key, None)
                self.lines.append(f"{name}: forget {key}")
            else:
                node.persisted[action.key] = action.value
                self.lines.append(f"{name}: persist {key}")
            return None
        if isinstance(action, Broadcast):
            lost = " (lost)" if name in self.silenced else ""
            self.lines.append(f"{name} -> all: {describe(action.message)}{lost}")
            self.sent_log.append((name, action.message))
            for other in self.names:
                if other != name:
                    self.queue.append((name, other, action.message))
            return None
        if isinstance(action, Send):
            lost = " (lost)" if name in self.silenced else ""
            self.lines.append(f"{name} -> {action.to}: {describe(action.message)}{lost}")
            self.sent_log.append((name, action.message))
            self.queue.append((name, action.to, action.message))
            return None
        if isinstance(action, BuildProposal):
            txs = min(node.pool, self.limits.txs_max)
            block = make_block(action.height, action.parent_hash, name, self.now, txs, action.engine_data)
            self.lines.append(f"{name}: build h{action.height} txs={txs} -> {short(block.hash)}")
            return ProposalBuilt(block)
        if isinstance(action, ExecuteProposal):
            valid = block_valid(action.block)
            verdict = "valid" if valid else "INVALID"
            self.lines.append(
                f"{name}: execute h{action.block.header.height} {short(action.block.hash)} {verdict}"
            )
            return ProposalExecuted(action.block.hash, valid)
        if isinstance(action, CommitBlock):
            height = action.block.header.height
            if height <= node.height:  # block sync got there first: fine if it is the same block
                if node.chain[height - 1].hash != action.block.hash:
                    raise SafetyViolation(
                        f"{name} commits h{height} {short(action.block.hash)} over a synced one"
                    )
                self.lines.append(f"{name}: commit h{height} {short(action.block.hash)} (already synced)")
                return None
            self._commit(node, action.block, action)
            return Committed(height, action.block.hash)
        raise AssertionError(f"unknown action {action!r}")

    def _commit(self, node: Node, block: Block, action: CommitBlock | None) -> None:
        h = block.header
        if h.height != node.height + 1 or h.parent_hash != node.head:
            raise SafetyViolation(f"{node.name} committed h{h.height} on top of h{node.height}")
        if action is not None:
            quorum = max(self.quorum, self.commit_quorum)
            ok = verify_commit_certificate(self.peers, block.hash, h.height, action.certificate, quorum)
            if not ok:
                raise SafetyViolation(f"{node.name} made a bad certificate for h{h.height}")
            sigs = len(action.certificate.signatures)
            self.lines.append(f"{node.name}: commit h{h.height} {short(block.hash)} sigs={sigs}")
        held = self.decided.setdefault(h.height, block.hash)
        if held != block.hash:
            raise SafetyViolation(f"h{h.height}: {short(held)} and {short(block.hash)} both committed")
        node.chain.append(block)
        node.pool = max(0, node.pool - h.tx_count)
        if self.on_commit is not None:
            self.on_commit(node.name, block)

    @property
    def quorum(self) -> int:
        n = len(self.names)
        f = (n - 1) // 3
        return (n + f + 2) // 2

    # ---- the world ----------------------------------------------------------------------
    def txs(self, count: int, names: list[str] | None = None) -> None:
        for node in self.live():
            if names is None or node.name in names:
                node.pool += count

    def tick(self, ms: int) -> None:
        self.now += ms
        for node in self.live():
            if self.auto_sync:
                self.sync(node.name)
            self.feed(node.name, Tick(self.now, node.pool, node.pool * TX_BYTES))

    def reachable(self, src: str, dst: str) -> bool:
        if src in self.silenced or self.nodes[dst].engine is None:
            return False
        if self.groups is None:
            return True
        return any(src in g and dst in g for g in self.groups)

    def deliver_one(self, src: str, dst: str, message: object) -> None:
        if self.reachable(src, dst):
            self.feed(dst, PeerMessage(src, message))

    def deliver(self, match: Callable[[str, str, object], bool] | None = None) -> int:
        """Deliver every queued message (those that match), once; new ones wait. Returns the count."""
        batch, self.queue = list(self.queue), deque()
        count = 0
        for src, dst, message in batch:
            if match is None or match(src, dst, message):
                self.deliver_one(src, dst, message)
                count += 1
            else:
                self.queue.append((src, dst, message))
        return count

    def drop(self, match: Callable[[str, str, object], bool] | None = None) -> None:
        self.queue = deque(m for m in self.queue if match is not None and not match(*m))

    def stabilize(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            if not self.queue:
                return
            self.deliver()

    def run(self, ms: int, step_ms: int = 50) -> None:
        """Tick and deliver everything for `ms` of simulated time."""
        for _ in range(ms // step_ms):
            self.tick(step_ms)
            self.stabilize()

    def sync(self, name: str, jump: bool = False) -> None:
        """Block sync: copy certified blocks from the longest live chain (one Committed each,
        or a single Committed for the last block with `jump`)."""
        node = self.nodes[name]
        donors = [n for n in self.live() if n.height > node.height]
        if not donors or node.engine is None:
            return
        donor = max(donors, key=lambda n: (n.height, n.name))
        fetched = donor.chain[node.height :]
        self.lines.append(f"{name}: syncs to h{donor.height} from {donor.name}")
        if jump:
            for block in fetched:
                self._commit(node, block, None)
            self.feed(name, Committed(node.height, node.head))
            return
        for block in fetched:  # the engine may commit some of them itself meanwhile
            if block.header.height > node.height:
                self._commit(node, block, None)
                self.feed(name, Committed(block.header.height, block.hash))

    # ---- byzantine messages ---------------------------------------------------------------
    def block_for(self, label: str, seq: int, view: int, proposer: str, valid: bool = True) -> Block:
        """A block at `seq` on top of the decided chain, distinct per label."""
        parent = self.decided.get(seq - 1, GENESIS) if seq > 1 else GENESIS
        return make_block(seq, parent, proposer, 10_000 + sum(map(ord, label)), 1, encode(view), valid)

    def forge(
        self, sender: str, kind: str, view: int, seq: int, block: Block, bad_sig: bool = False
    ) -> object:
        key = node_key(sender)
        digest = block.hash

        def sign(message: bytes) -> bytes:
            return bytes(64) if bad_sig else key.sign(message)

        if kind == "pre-prepare":
            return PrePrepare(view, seq, digest, sign(preprepare_bytes(view, seq, digest)), block)
        if kind == "prepare":
            return Prepare(view, seq, digest, sign(prepare_bytes(view, seq, digest)))
        if kind == "commit":
            commit_sig = key.sign(commit_signing_bytes(digest))
            return Commit(view, seq, digest, commit_sig, sign(commit_bytes(view, seq, digest, commit_sig)))
        if kind == "checkpoint":
            return Checkpoint(seq, digest, sign(checkpoint_bytes(seq, digest)))
        raise ValueError(f"cannot forge {kind}")

    def inject(self, sender: str, to: Iterable[str], message: object) -> None:
        self.lines.append(f"{sender} => {','.join(to)}: {describe(message)}")
        for dst in to:
            if self.nodes.get(dst) is not None and self.nodes[dst].engine is not None:
                self.feed(dst, PeerMessage(sender, message))

    # ---- checks ---------------------------------------------------------------------------
    def heights(self) -> dict[str, int]:
        return {n.name: n.height for n in self.honest()}

    def take_lines(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines
