"""One simulated node instance: its fake disk and the driver state that a crash wipes.

The disk holds what survives a crash: the engine's persisted keys and the committed chain
(each block with its certificate and its transaction ids, as a real node keeps receipts).
Everything else — the engine object, the transaction pool, executed proposals, pending
block-sync work — is memory and is lost when the node crashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consortia.consensus.interface import Engine
from consortia.sim.byzantine import Mutator
from consortia.types import Block, Header


@dataclass
class FakeDisk:
    genesis: Block
    persisted: dict[str, bytes] = field(default_factory=dict)
    chain: list[Block] = field(default_factory=list)
    chain_ids: list[list[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.chain:
            self.wipe()

    def wipe(self) -> None:
        """The data directory is gone: only the genesis block (from the channel config) is left."""
        self.persisted = {}
        self.chain = [self.genesis]
        self.chain_ids = [[]]


class SimNode:
    """Driver state of one engine instance (a twin identity has two of these)."""

    def __init__(self, index: int, node: int, name: str, twin: int | None, honest: bool, disk: FakeDisk):
        self.index = index  # instance index
        self.node = node  # identity index
        self.name = name  # identity name: what peers see as the sender
        self.twin = twin
        self.label = name if twin is None else f"{name}#{twin + 1}"
        self.honest = honest
        self.disk = disk
        self.up = False
        self.failed = False  # the engine raised: the instance is stopped for good
        self.incarnation = 0
        self.mutator: Mutator | None = None
        self.engine: Engine | None = None
        self.clock_offset_ms = 0
        self.tick_ms = 10
        self.crash_armed = False
        self.history: list[bytes] = []  # recent messages, for a byzantine replayer
        self.last_sync_ms = -(10**9)
        self.forget()

    def forget(self) -> None:
        """Lose everything that lives in memory; rebuild the indexes from the disk."""
        self.engine = None
        self.crash_armed = False
        self.pool: dict[bytes, bytes] = {}  # tx id -> envelope, in arrival order
        self.known: dict[bytes, tuple[Header, list[bytes]]] = {}  # uncommitted valid blocks
        self.invalid: dict[bytes, str] = {}
        self.waiting: dict[bytes, list[Block]] = {}  # parent hash -> proposals to execute
        self.gap: dict[int, Block] = {}  # certified blocks ahead of the chain
        self.reserved: dict[bytes, int] = {}  # tx id -> height of an uncommitted block with it
        self._pending: tuple[int, int] | None = None
        self.chain_index: dict[bytes, int] = {b.hash: i for i, b in enumerate(self.disk.chain)}
        self.chain_txs: dict[bytes, int] = {
            tx_id: h for h, ids in enumerate(self.disk.chain_ids) for tx_id in ids
        }

    @property
    def height(self) -> int:
        return len(self.disk.chain) - 1

    @property
    def head(self) -> Block:
        return self.disk.chain[-1]

    def header_of(self, block_hash: bytes) -> Header | None:
        h = self.chain_index.get(block_hash)
        if h is not None:
            return self.disk.chain[h].header
        known = self.known.get(block_hash)
        return known[0] if known is not None else None

    def ancestor_txs(self, block_hash: bytes) -> set[bytes] | None:
        """Transaction ids in the uncommitted blocks from `block_hash` down to the chain."""
        out: set[bytes] = set()
        while block_hash not in self.chain_index:
            known = self.known.get(block_hash)
            if known is None:
                return None
            out.update(known[1])
            block_hash = known[0].parent_hash
        return out

    def remember(self, header: Header, ids: list[bytes]) -> None:
        self.known[header.hash] = (header, ids)
        for tx_id in ids:
            self.reserved[tx_id] = header.height
        self._pending = None

    def add_to_pool(self, tx_id: bytes, raw: bytes) -> None:
        if tx_id not in self.chain_txs and tx_id not in self.pool:
            self.pool[tx_id] = raw
            self._pending = None

    def append(self, block: Block, ids: list[bytes]) -> None:
        """Make `block` (with its certificate) durable at the next height."""
        self.disk.chain.append(block)
        self.disk.chain_ids.append(ids)
        height = block.header.height
        self.chain_index[block.hash] = height
        for tx_id in ids:
            self.chain_txs[tx_id] = height
            self.pool.pop(tx_id, None)
        self.known.pop(block.hash, None)
        if self.reserved:
            self.reserved = {t: h for t, h in self.reserved.items() if h > height}
        self._pending = None

    def pending(self) -> tuple[int, int]:
        """(transactions, bytes) in the pool that no uncommitted block of ours holds yet."""
        if self._pending is None:
            txs = size = 0
            for tx_id, raw in self.pool.items():
                if tx_id not in self.reserved:
                    txs += 1
                    size += len(raw)
            self._pending = (txs, size)
        return self._pending
