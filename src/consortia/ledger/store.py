"""The ledger of one channel: block file + one LMDB environment, committed together.

Directory layout (one per channel):
    blocks.dat   append-only block records (consortia.ledger.blockstore)
    index/       LMDB environment with named databases:
        state     key -> value                      the current state
        smt       node position -> node             the sparse Merkle tree over state
        history   len(key)|key|height|tx_index -> [tx_id, value | None]
        blocks    height -> (offset, length)        where each block record is
        hashes    block hash -> height
        txs       tx_id -> (height, index)
        receipts  height|index -> encoded Receipt   (appended in order: no random writes)
        meta      channel, chain_id, head (encoded Header), block_end

Commit order: append the block record and fdatasync it, then apply everything else in ONE
LMDB write transaction (synchronous). A block is durable, and may be acknowledged, once
that transaction returns. A crash in between leaves a record past `block_end`, which the
next open cuts off. LMDB holds state, proof nodes and indexes so they change atomically.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import lmdb
import msgspec

from consortia.crypto import ZERO_HASH, merkle_proof, merkle_root, sha256
from consortia.ledger.blockstore import BlockStore
from consortia.ledger.errors import (
    InvalidBlock,
    InvalidWrite,
    LedgerCorrupt,
    LedgerError,
    NotFound,
    StalePrepared,
    StateRootMismatch,
    WrongChannel,
    WrongHeight,
    WrongParent,
)
from consortia.ledger.interface import StateReader, Write
from consortia.ledger.proofs import HASH_BYTES, StateProof, TxProof
from consortia.ledger.smt import SmtUpdate, SparseMerkleTree
from consortia.types import Block, CodecError, Header, Receipt, decode, encode
from consortia.types.eth import tx_id_of

# LMDB refuses keys over 511 bytes; leave room for composite keys built on state keys.
STATE_KEY_BYTES_MAX = 480
# Write.tx_index of a write made by the block itself rather than one of its transactions
# (genesis state, system writes); its history entry carries an empty tx id.
BLOCK_WRITE_INDEX = -1
MAP_SIZE_DEFAULT = 1 << 36
CACHE_NODES_DEFAULT = 1 << 18

BLOCKS_FILE = "blocks.dat"
INDEX_DIR = "index"

_U64 = struct.Struct(">Q")
_LOCATION = struct.Struct(">QI")  # (height or offset, index or length)
_HISTORY_SUFFIX = struct.Struct(">QI")  # height, tx_index + 1 (so BLOCK_WRITE_INDEX sorts first)
_KEY_LENGTH = struct.Struct(">H")

_META_CHANNEL = b"channel"
_META_CHAIN_ID = b"chain_id"
_META_HEAD = b"head"
_META_BLOCK_END = b"block_end"

_DB_NAMES = (b"state", b"smt", b"history", b"blocks", b"hashes", b"txs", b"receipts", b"meta")


class KeyVersion(NamedTuple):
    """One version of a key: the value (None = deleted) a transaction left at a height."""

    height: int
    tx_index: int
    tx_id: bytes  # empty for BLOCK_WRITE_INDEX writes and genesis writes
    value: bytes | None


class _HistoryEntry(msgspec.Struct, array_like=True, frozen=True):
    tx_id: bytes
    value: bytes | None


@dataclass(frozen=True, slots=True)
class PreparedState:
    """State writes of one block with the state root they lead to; nothing written yet.

    Valid for commit only while the ledger's head is still (base_height, base_root).
    """

    root: bytes
    base_height: int
    base_root: bytes
    state: tuple[tuple[bytes, bytes | None], ...]  # last write per key, in key order
    history: tuple[tuple[bytes, int, bytes | None], ...]  # (key, tx_index, value) per write
    smt: SmtUpdate
    parent: PreparedState | None = field(default=None, repr=False)

    def node_overlay(self) -> dict[bytes, bytes | None]:
        """Tree nodes written by this and every uncommitted parent (newest wins)."""
        chain: list[PreparedState] = []
        p: PreparedState | None = self
        while p is not None:
            chain.append(p)
            p = p.parent
        merged: dict[bytes, bytes | None] = {}
        for prepared in reversed(chain):
            merged.update(prepared.smt.nodes)
        return merged


class CommittedState:
    """The committed state as a StateReader. Each call reads one consistent version."""

    def __init__(self, env: lmdb.Environment, db: lmdb._Database) -> None:
        self._env = env
        self._db = db

    def get(self, key: bytes) -> bytes | None:
        if not 0 < len(key) <= STATE_KEY_BYTES_MAX:
            return None  # such a key can never have been written
        with self._env.begin(db=self._db) as txn:
            value: bytes | None = txn.get(key)
            return value

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Live keys in [start, end), ascending. Holds a read transaction until exhausted or
        closed, so consume it promptly."""
        with self._env.begin(db=self._db) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(start):
                return
            for key, value in cursor.iternext():
                if end is not None and key >= end:
                    return
                yield key, value


class Ledger:
    """Blocks, state, proofs and indexes of one channel.

    prepare/commit/initialize/close belong to one writer thread; the read methods may be
    called from other threads (each reads one committed version).
    """

    def __init__(
        self,
        path: Path,
        channel: str,
        env: lmdb.Environment,
        dbs: dict[bytes, lmdb._Database],
        blocks: BlockStore,
        smt: SparseMerkleTree,
    ) -> None:
        """Use Ledger.open."""
        self._path = path
        self._channel = channel
        self._env = env
        self._dbs = dbs
        self._blocks = blocks
        self._smt = smt
        self._closed = False
        self._chain_id: str | None = None
        # Head header and its hash, swapped as one object so readers never see them mixed.
        self._tip: tuple[Header | None, bytes] = (None, ZERO_HASH)
        self._load_meta()
        self.state: StateReader = CommittedState(env, dbs[b"state"])

    # ------------------------------------------------------------------ open

    @classmethod
    def open(
        cls,
        path: Path,
        channel: str,
        *,
        map_size: int = MAP_SIZE_DEFAULT,
        cache_nodes_max: int = CACHE_NODES_DEFAULT,
    ) -> Ledger:
        """Open (creating if needed) the ledger of `channel` in directory `path`, and recover.

        Recovery cuts the block file back to the end of the last committed block (a torn
        write, or a block appended but never indexed). Raises WrongChannel when the directory
        belongs to another channel, LedgerCorrupt when the block file is shorter than the
        index says, OSError / lmdb.Error for I/O failures.
        """
        path.mkdir(parents=True, exist_ok=True)
        env = lmdb.open(
            str(path / INDEX_DIR),
            map_size=map_size,
            max_dbs=len(_DB_NAMES),
            sync=True,
            metasync=True,
            readahead=False,  # random reads of tree nodes: read-ahead only wastes page cache
        )
        blocks: BlockStore | None = None
        try:
            with env.begin(write=True) as txn:
                dbs = {name: env.open_db(name, txn=txn) for name in _DB_NAMES}
                stored = txn.get(_META_CHANNEL, db=dbs[b"meta"])
                if stored is None:
                    txn.put(_META_CHANNEL, channel.encode(), db=dbs[b"meta"])
                elif stored != channel.encode():
                    raise WrongChannel(f"{path} holds channel {stored.decode(errors='replace')!r}")
                raw_end = txn.get(_META_BLOCK_END, db=dbs[b"meta"])
            blocks = BlockStore.open(path / BLOCKS_FILE)
            blocks.recover(0 if raw_end is None else _U64.unpack(raw_end)[0])
            return cls(path, channel, env, dbs, blocks, SparseMerkleTree(cache_nodes_max))
        except BaseException:
            if blocks is not None:
                blocks.close()
            env.close()
            raise

    def _load_meta(self) -> None:
        with self._env.begin(db=self._dbs[b"meta"]) as txn:
            raw_head = txn.get(_META_HEAD)
            raw_chain = txn.get(_META_CHAIN_ID)
        if raw_head is not None:
            head = _decode_header(raw_head)
            self._tip = (head, head.hash)
        self._chain_id = None if raw_chain is None else raw_chain.decode()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._blocks.close()
        self._env.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ head

    @property
    def path(self) -> Path:
        return self._path

    @property
    def channel(self) -> str:
        return self._channel

    @property
    def chain_id(self) -> str | None:
        return self._chain_id

    @property
    def height(self) -> int:
        """Height of the last committed block; -1 when empty."""
        head = self._tip[0]
        return -1 if head is None else head.height

    @property
    def head(self) -> Header | None:
        return self._tip[0]

    @property
    def head_hash(self) -> bytes:
        """Hash of the last committed header; 32 zero bytes (the genesis parent) when empty."""
        return self._tip[1]

    @property
    def state_root(self) -> bytes:
        """Root of the committed state; the empty-tree root (32 zero bytes) when empty."""
        head = self._tip[0]
        return ZERO_HASH if head is None else head.state_root

    # --------------------------------------------------------------- writing

    def prepare(self, writes: Sequence[Write], parent: PreparedState | None = None) -> PreparedState:
        """The state root `writes` lead to, without touching disk. The last write per key wins.

        With `parent` (prepared, not yet committed) the writes apply on top of it, so a
        block can be prepared before the one below it is committed; commit them in order.
        Raises InvalidWrite for a key that is not 1..STATE_KEY_BYTES_MAX bytes, a value that
        is not bytes or None, or a tx_index below BLOCK_WRITE_INDEX.
        """
        self._check_open()
        last: dict[bytes, bytes | None] = {}
        for w in writes:
            _check_write(w)
            last[w.key] = w.value
        changes = {sha256(k): (None if v is None else sha256(v)) for k, v in last.items()}
        overlay = None if parent is None else parent.node_overlay()
        with self._env.begin(db=self._dbs[b"smt"]) as txn:
            update = self._smt.prepare(changes, txn.get, overlay)
        if parent is None:
            base_height, base_root = self.height, self.state_root
        else:
            base_height, base_root = parent.base_height + 1, parent.root
        return PreparedState(
            root=update.root,
            base_height=base_height,
            base_root=base_root,
            state=tuple(sorted(last.items())),
            history=tuple((w.key, w.tx_index, w.value) for w in writes),
            smt=update,
            parent=parent,
        )

    def initialize(self, genesis: Block, writes: Sequence[Write]) -> None:
        """Commit the genesis block (height 0, parent 32 zero bytes) with its initial state.

        Its txs hold the channel's initial data (e.g. its configuration), not transactions:
        they are covered by tx_root but not indexed; tx_count must be 0 and there are no
        receipts. Raises what prepare() and commit() raise.
        """
        if self.height != -1:
            raise WrongHeight(f"ledger already has blocks up to height {self.height}")
        self.commit(genesis, (), self.prepare(writes))

    def commit(self, block: Block, receipts: Sequence[Receipt], prepared: PreparedState) -> None:
        """Append `block` with its receipts and prepared state, durably and atomically.

        When this returns the block is durable and may be acknowledged. A transaction id
        already in the ledger keeps its first location: tx_location, receipt and prove_tx
        answer for the first occurrence; block_receipts still lists every receipt.
        Raises (having written nothing) WrongHeight, WrongParent, StalePrepared,
        StateRootMismatch, or InvalidBlock for a header that does not match the body or
        receipts; OSError / lmdb.Error on I/O failure (the block is then not committed).
        """
        self._check_open()
        tx_ids, encoded_receipts = self._check_block(block, receipts, prepared)
        header = block.header
        block_hash = header.hash
        old_end = self._blocks.end
        offset, length = self._blocks.append(block)
        try:
            self._blocks.sync()
            with self._env.begin(write=True) as txn:
                self._write_index(txn, block, block_hash, tx_ids, encoded_receipts, prepared)
                self._put(txn, b"blocks", _U64.pack(header.height), _LOCATION.pack(offset, length))
                self._put(txn, b"meta", _META_BLOCK_END, _U64.pack(offset + length))
        except BaseException:
            # The index never mentioned this record: cut it so the file ends at the head again.
            # Should that fail too, the next open cuts it.
            try:
                self._blocks.recover(old_end)
            except OSError:
                pass
            raise
        self._smt.committed(prepared.smt)
        if self._chain_id is None:
            self._chain_id = header.chain_id
        self._tip = (header, block_hash)

    def _check_block(
        self, block: Block, receipts: Sequence[Receipt], prepared: PreparedState
    ) -> tuple[list[bytes], list[bytes]]:
        """Refuse a block that is not the next one or whose header does not match its body.

        Returns the transaction ids and the encoded receipts. The genesis block (height 0)
        carries the channel's initial data, not signed transactions: its `txs` are committed
        by tx_root but not decoded, indexed or receipted (tx_count 0, no receipts), and its
        writes' history entries carry an empty tx id.
        """
        header = block.header
        if header.height != self.height + 1:
            raise WrongHeight(f"block {header.height} does not follow height {self.height}")
        if header.parent_hash != self.head_hash:
            raise WrongParent(f"block {header.height} does not extend the head")
        if header.channel != self._channel:
            raise InvalidBlock(f"block of channel {header.channel!r} on ledger of {self._channel!r}")
        if self._chain_id is not None and header.chain_id != self._chain_id:
            raise InvalidBlock(f"block of chain {header.chain_id!r} on chain {self._chain_id!r}")
        if prepared.base_height != self.height or prepared.base_root != self.state_root:
            raise StalePrepared("the state was prepared on another head")
        if header.state_root != prepared.root:
            raise StateRootMismatch(f"block {header.height} state root differs from the prepared root")
        if header.tx_root != merkle_root(block.txs):
            raise InvalidBlock("transactions root does not match the body")
        tx_ids = [] if header.height == 0 else _tx_ids(block)
        if header.tx_count != len(tx_ids):
            raise InvalidBlock(f"header counts {header.tx_count} transactions, body has {len(tx_ids)}")
        if len(receipts) != len(tx_ids):
            raise InvalidBlock(f"{len(receipts)} receipts for {len(tx_ids)} transactions")
        for i, (receipt, tx_id) in enumerate(zip(receipts, tx_ids, strict=True)):
            if receipt.tx_id != tx_id:
                raise InvalidBlock(f"receipt {i} is for another transaction")
        encoded_receipts = [encode(r) for r in receipts]
        if header.receipts_root != merkle_root(encoded_receipts):
            raise InvalidBlock("receipts root does not match the receipts")
        if header.height > 0:
            for _, tx_index, _ in prepared.history:
                if tx_index >= len(tx_ids):
                    raise InvalidBlock(f"a write names transaction {tx_index}; the block has {len(tx_ids)}")
        cert = block.certificate
        if cert is not None and (cert.height != header.height or cert.block_hash != header.hash):
            raise InvalidBlock("the commit certificate is for another block")
        return tx_ids, encoded_receipts

    def _write_index(
        self,
        txn: lmdb.Transaction,
        block: Block,
        block_hash: bytes,
        tx_ids: list[bytes],
        encoded_receipts: list[bytes],
        prepared: PreparedState,
    ) -> None:
        height = block.header.height
        state_db, smt_db, hist_db = self._dbs[b"state"], self._dbs[b"smt"], self._dbs[b"history"]
        for key, value in prepared.state:
            if value is None:
                txn.delete(key, db=state_db)
            else:
                txn.put(key, value, db=state_db)
        for node_key, node in sorted(prepared.smt.nodes.items()):
            if node is None:
                txn.delete(node_key, db=smt_db)
            else:
                txn.put(node_key, node, db=smt_db)
        for key, tx_index, value in prepared.history:
            # Block-level writes, and all genesis writes, name no transaction.
            tx_id = tx_ids[tx_index] if 0 <= tx_index < len(tx_ids) else b""
            hist_key = _history_prefix(key) + _HISTORY_SUFFIX.pack(height, tx_index + 1)
            txn.put(hist_key, encode(_HistoryEntry(tx_id, value)), db=hist_db)
        txs_db, receipts_db = self._dbs[b"txs"], self._dbs[b"receipts"]
        for index, (tx_id, receipt) in enumerate(zip(tx_ids, encoded_receipts, strict=True)):
            location = _LOCATION.pack(height, index)
            # First occurrence wins: a replayed id (marked invalid by execution) keeps the original.
            txn.put(tx_id, location, overwrite=False, db=txs_db)
            txn.put(location, receipt, append=True, db=receipts_db)
        self._put(txn, b"hashes", block_hash, _U64.pack(height))
        self._put(txn, b"meta", _META_HEAD, encode(block.header))
        if self._chain_id is None:
            self._put(txn, b"meta", _META_CHAIN_ID, block.header.chain_id.encode())

    def _put(self, txn: lmdb.Transaction, db: bytes, key: bytes, value: bytes) -> None:
        txn.put(key, value, db=self._dbs[db])

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError("the ledger is closed")

    # --------------------------------------------------------------- reading

    def _get(self, db: bytes, key: bytes) -> bytes | None:
        with self._env.begin(db=self._dbs[db]) as txn:
            value: bytes | None = txn.get(key)
            return value

    def _location(self, height: int) -> tuple[int, int] | None:
        if height < 0:
            return None
        raw = self._get(b"blocks", _U64.pack(height))
        if raw is None:
            return None
        offset, length = _LOCATION.unpack(raw)
        return offset, length

    def block(self, height: int) -> Block | None:
        """The committed block at `height`, or None. Raises CorruptBlock."""
        location = self._location(height)
        return None if location is None else self._blocks.read(*location)

    def block_bytes(self, height: int) -> bytes | None:
        """The committed block at `height` in its canonical encoding, or None. Raises CorruptBlock."""
        location = self._location(height)
        return None if location is None else self._blocks.read_payload(*location)

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        """The committed block whose header hashes to `block_hash`, or None. Raises CorruptBlock."""
        if len(block_hash) != HASH_BYTES:
            return None
        raw = self._get(b"hashes", block_hash)
        return None if raw is None else self.block(_U64.unpack(raw)[0])

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """(height, index in block) of a committed transaction, or None."""
        if len(tx_id) != HASH_BYTES:
            return None
        raw = self._get(b"txs", tx_id)
        if raw is None:
            return None
        height, index = _LOCATION.unpack(raw)
        return height, index

    def has_tx(self, tx_id: bytes) -> bool:
        return self.tx_location(tx_id) is not None

    def tx_ids(self) -> Iterator[bytes]:
        """Every committed transaction id, in index order (e.g. to build an in-memory filter)."""
        with self._env.begin(db=self._dbs[b"txs"]) as txn:
            yield from txn.cursor().iternext(keys=True, values=False)

    def receipt(self, tx_id: bytes) -> Receipt | None:
        """The receipt of a committed transaction, or None. Raises LedgerCorrupt."""
        location = self.tx_location(tx_id)
        if location is None:
            return None
        raw = self._get(b"receipts", _LOCATION.pack(*location))
        if raw is None:
            raise LedgerCorrupt(f"no receipt for transaction {tx_id.hex()}")
        return _decode_receipt(raw)

    def block_receipts(self, height: int) -> list[Receipt] | None:
        """The receipts of the block at `height`, in transaction order, or None when there is
        no such block. Raises LedgerCorrupt."""
        if self._location(height) is None:
            return None
        prefix = _U64.pack(height)
        receipts: list[Receipt] = []
        with self._env.begin(db=self._dbs[b"receipts"]) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key, raw in cursor.iternext():
                    if not key.startswith(prefix):
                        break
                    receipts.append(_decode_receipt(raw))
        return receipts

    def history(self, key: bytes, limit: int = 100) -> list[KeyVersion]:
        """Up to `limit` versions of `key`, newest first (deletions have value None).

        Raises LedgerCorrupt for an unreadable entry.
        """
        if limit <= 0 or not 0 < len(key) <= STATE_KEY_BYTES_MAX:
            return []
        prefix = _history_prefix(key)
        versions: list[KeyVersion] = []
        with self._env.begin(db=self._dbs[b"history"]) as txn:
            cursor = txn.cursor()
            # Position on the last entry of this key: just before the first key past it.
            if cursor.set_range(prefix + b"\xff" * _HISTORY_SUFFIX.size):
                positioned = cursor.prev()
            else:
                positioned = cursor.last()
            if not positioned:
                return versions
            for hist_key, raw in cursor.iterprev():
                if len(versions) >= limit or len(hist_key) != len(prefix) + _HISTORY_SUFFIX.size:
                    break
                if not hist_key.startswith(prefix):
                    break
                height, index_plus_one = _HISTORY_SUFFIX.unpack_from(hist_key, len(prefix))
                try:
                    entry = decode(raw, _HistoryEntry)
                except CodecError as exc:
                    raise LedgerCorrupt(f"unreadable history entry: {exc}") from exc
                versions.append(KeyVersion(height, index_plus_one - 1, entry.tx_id, entry.value))
        return versions

    def prove(self, key: bytes) -> StateProof:
        """Proof of `key`'s committed value (or absence) against `state_root`.

        Raises LedgerCorrupt when the state and its tree disagree.
        """
        key_hash = sha256(key)
        with self._env.begin() as txn:  # one version of head, state and tree
            raw_head = txn.get(_META_HEAD, db=self._dbs[b"meta"])
            value = txn.get(key, db=self._dbs[b"state"]) if 0 < len(key) <= STATE_KEY_BYTES_MAX else None
            smt_db = self._dbs[b"smt"]
            siblings, end = self._smt.prove_path(key_hash, lambda k: txn.get(k, db=smt_db))
        height = -1 if raw_head is None else _decode_header(raw_head).height
        end_key_hash = None if end is None else end[1 : 1 + HASH_BYTES]
        if value is not None:
            if end is None or end_key_hash != key_hash or end[1 + HASH_BYTES :] != sha256(value):
                raise LedgerCorrupt("state value and its tree leaf disagree")
            return StateProof(key, value, siblings, height=height)
        if end is None:
            return StateProof(key, None, siblings, height=height)
        if end_key_hash == key_hash:
            raise LedgerCorrupt("the tree holds a key the state does not")
        return StateProof(key, None, siblings, end[1 : 1 + HASH_BYTES], end[1 + HASH_BYTES :], height)

    def prove_tx(self, tx_id: bytes) -> TxProof:
        """Merkle proof of a committed transaction against its block's tx_root.

        Raises NotFound, CorruptBlock.
        """
        location = self.tx_location(tx_id)
        if location is None:
            raise NotFound(f"transaction {tx_id.hex()} is not in the ledger")
        height, index = location
        block = self.block(height)
        if block is None:
            raise LedgerCorrupt(f"transaction index points at missing block {height}")
        siblings = merkle_proof(block.txs, index)
        return TxProof(tx_id, height, index, len(block.txs), siblings, block.header)


def _tx_ids(block: Block) -> list[bytes]:
    ids: list[bytes] = []
    for i, raw in enumerate(block.txs):
        try:
            ids.append(tx_id_of(raw))
        except CodecError as exc:
            raise InvalidBlock(f"transaction {i} is not a transaction: {exc}") from exc
    return ids


def _history_prefix(key: bytes) -> bytes:
    # Length first: one key's versions are contiguous even when it prefixes another key.
    return _KEY_LENGTH.pack(len(key)) + key


def _decode_header(raw: bytes) -> Header:
    try:
        return decode(raw, Header)
    except CodecError as exc:
        raise LedgerCorrupt(f"unreadable head header: {exc}") from exc


def _decode_receipt(raw: bytes) -> Receipt:
    try:
        return decode(raw, Receipt)
    except CodecError as exc:
        raise LedgerCorrupt(f"unreadable receipt: {exc}") from exc


def _check_write(w: Write) -> None:
    if not isinstance(w.key, bytes) or not 0 < len(w.key) <= STATE_KEY_BYTES_MAX:
        raise InvalidWrite(f"state keys must be 1..{STATE_KEY_BYTES_MAX} bytes")
    if w.value is not None and not isinstance(w.value, bytes):
        raise InvalidWrite("state values must be bytes or None")
    if not isinstance(w.tx_index, int) or w.tx_index < BLOCK_WRITE_INDEX:
        raise InvalidWrite(f"tx_index must be >= {BLOCK_WRITE_INDEX}")
