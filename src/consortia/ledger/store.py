"""The ledger of one channel: block file + one LMDB environment, committed together.

Directory layout (one per channel), format 2:
    blocks.dat   append-only block records (consortia.ledger.blockstore)
    index/       LMDB environment with named databases:
        state     key -> value                      the current state
        smt       node position -> node             the sparse Merkle tree over state
        history   len(key)|key|height -> [tx_index, value | None, ...]   every version a
                  block left for the key, in transaction order (one entry per key and block;
                  a marker byte says whether it is zlib-compressed)
        blocks    height -> (offset, length)        where each block record is
        hashes    block hash -> height
        txs       tx_id[:8] -> varint height, varint index   (checked against the id list)
        tx_collisions  tx_id -> the same, for an id whose prefix an earlier id holds
        receipts  height -> block's tx ids (32 bytes each) + zlib(receipts without their tx id)
        meta      format, channel, chain_id, head (encoded Header), block_end

What the block file holds is not stored again: a receipt keeps what execution produced and
gets its tx id back from its block's id list, which history entries use too. Per block the
index grows by one appended `receipts` and `blocks` record, one `hashes` record, one `txs`
record per transaction and one `history` entry per written key; heights in history keys are
written as a length byte and the minimal big-endian bytes, so they sort and stay short.

Commit order: append the block record and fdatasync it, then apply everything else in ONE
LMDB write transaction (synchronous). A block is durable, and may be acknowledged, once
that transaction returns. A crash in between leaves a record past `block_end`, which the
next open cuts off. LMDB holds state, proof nodes and indexes so they change atomically.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import lmdb
import msgspec

from consortia.crypto import ZERO_HASH, merkle_proof, merkle_root, sha256
from consortia.ledger.blockstore import BlockStore
from consortia.ledger.errors import (
    IncompatibleFormat,
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
from consortia.types import Block, CodecError, Event, Header, Receipt, decode, encode
from consortia.types.eth import tx_id_of

# LMDB refuses keys over 511 bytes; leave room for composite keys built on state keys.
STATE_KEY_BYTES_MAX = 480
# Write.tx_index of a write made by the block itself rather than one of its transactions
# (genesis state, system writes); its history entry carries an empty tx id.
BLOCK_WRITE_INDEX = -1
MAP_SIZE_DEFAULT = 1 << 36
CACHE_NODES_DEFAULT = 1 << 18
# State keys whose hash prepare() remembers (about 200 bytes each); emptied when full.
KEY_HASHES_MAX = 1 << 16

BLOCKS_FILE = "blocks.dat"
INDEX_DIR = "index"

# Bumped whenever what the index holds, or how, changes; a directory of another format is
# refused on open rather than misread.
FORMAT_VERSION = 2
# zlib level of a block's receipts and of long history entries: level 1 already shrinks
# typical receipts ~15x, and costs well under a millisecond per thousand receipts.
ZLIB_LEVEL = 1
# A history entry at least this long (a key written by many transactions of one block) is
# stored zlib-compressed when that is shorter: the versions of a hot key differ little.
HISTORY_COMPRESS_MIN = 256
_HISTORY_PLAIN = b"\x00"
_HISTORY_ZLIB = b"\x01"

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_LOCATION = struct.Struct(">QI")  # (offset, length) of a block record
_KEY_LENGTH = struct.Struct(">H")

_META_FORMAT = b"format"
_META_CHANNEL = b"channel"
_META_CHAIN_ID = b"chain_id"
_META_HEAD = b"head"
_META_BLOCK_END = b"block_end"

_DB_NAMES = (
    b"state",
    b"smt",
    b"history",
    b"blocks",
    b"hashes",
    b"txs",
    b"tx_collisions",
    b"receipts",
    b"meta",
)
# The tx index is keyed by this many leading bytes of the id, checked against the block's id
# list on every hit; ids that share a prefix with an earlier, different id go to
# `tx_collisions` under their full id. 8 bytes: collisions are rare (and harmless), and the
# index costs ~25 bytes less per transaction than with 32-byte keys.
TX_KEY_BYTES = 8


class IndexUsage(NamedTuple):
    """Bytes one named database of the index occupies, from LMDB's own statistics."""

    entries: int
    pages: int  # branch + leaf + overflow pages
    bytes: int  # pages * page size


class KeyVersion(NamedTuple):
    """One version of a key: the value (None = deleted) a transaction left at a height."""

    height: int
    tx_index: int
    tx_id: bytes  # empty for BLOCK_WRITE_INDEX writes and genesis writes
    value: bytes | None


class _StoredReceipt(msgspec.Struct, array_like=True, frozen=True):
    """A Receipt without its tx id, which the block's id list holds."""

    status: int
    error: str
    events: list[Event]
    steps: int
    result: Any = None


@dataclass(frozen=True, slots=True)
class PreparedState:
    """State writes of one block with the state root they lead to; nothing written yet.

    Valid for commit only while the ledger's head is still (base_height, base_root).
    """

    root: bytes
    base_height: int
    base_root: bytes
    state: dict[bytes, bytes | None]  # last write per key
    history: dict[bytes, bytes]  # the block's `history` records, key -> packed entry
    max_tx_index: int  # the highest tx_index among the writes (BLOCK_WRITE_INDEX if none)
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


@dataclass(frozen=True, slots=True)
class BodyDigests:
    """What a block's builder or checker already computed from its body and receipts.

    `tx_ids` has one id per transaction (`types.eth.tx_id_of` of each), `tx_root` is
    merkle_root(block.txs) and `receipts_root` the Merkle root of the encoded receipts.
    Handing them to `Ledger.commit` spares recomputing them (decoding every transaction and
    hashing the body and receipts again): the caller vouches that they were computed from
    that very block and those receipts, and the ledger still refuses a header they do not
    match. Only a trusted in-process caller (the node's block processor) passes them.
    `encoded_receipts`, when given, holds `encode(receipts[i])` for each receipt (the
    receipts root's leaves): the block's receipts record is then cut from them rather than
    encoded again.
    """

    tx_ids: Sequence[bytes]
    tx_root: bytes
    receipts_root: bytes
    encoded_receipts: Sequence[bytes] | None = None


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
        self._key_hashes: dict[bytes, bytes] = {}  # sha256 of recent state keys (writer thread)
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
        belongs to another channel, IncompatibleFormat when it was written in another on-disk
        format, LedgerCorrupt when the block file is shorter than the index says, OSError /
        lmdb.Error for I/O failures.
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
                meta = dbs[b"meta"]
                stored = txn.get(_META_CHANNEL, db=meta)
                stored_format = txn.get(_META_FORMAT, db=meta)
                if stored is None:
                    txn.put(_META_FORMAT, str(FORMAT_VERSION).encode(), db=meta)
                    txn.put(_META_CHANNEL, channel.encode(), db=meta)
                elif stored_format != str(FORMAT_VERSION).encode():
                    found = "1" if stored_format is None else stored_format.decode(errors="replace")
                    raise IncompatibleFormat(
                        f"{path} holds ledger format {found}; this version reads format {FORMAT_VERSION}"
                    )
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
        versions: dict[bytes, list[int | bytes | None]] = {}
        max_tx_index = BLOCK_WRITE_INDEX
        in_order = True
        for w in writes:
            key, value, tx_index = w
            if (
                type(key) is not bytes
                or not 0 < len(key) <= STATE_KEY_BYTES_MAX
                or (value is not None and type(value) is not bytes)
                or type(tx_index) is not int
                or tx_index < BLOCK_WRITE_INDEX
            ):
                _check_write(w)  # raises, unless only a subclass made the exact checks miss
            last[key] = value
            # Executors write in transaction order: group each key's versions as they come,
            # and regroup from scratch should a write come out of order.
            flat = versions.get(key)
            if flat is None:
                versions[key] = [tx_index, value]
            elif flat[-2] == tx_index:
                flat[-1] = value
            else:
                if tx_index < flat[-2]:  # type: ignore[operator]
                    in_order = False
                flat += (tx_index, value)
            if tx_index > max_tx_index:
                max_tx_index = tx_index
        if not in_order:
            versions = _group_versions(writes)
        if parent is None:
            base_height, base_root = self.height, self.state_root
        else:
            base_height, base_root = parent.base_height + 1, parent.root
        # The history records are packed now, while the versions are at hand.
        height_bytes = _sortable_uint(base_height + 1)
        history = {
            _KEY_LENGTHS[len(key)] + key + height_bytes: _pack_history(flat) for key, flat in versions.items()
        }
        # Key hashes are remembered: the same keys (accounts, counters) recur block after block.
        key_hashes = self._key_hashes
        if len(key_hashes) > KEY_HASHES_MAX - len(last):
            key_hashes = self._key_hashes = {}
        changes: dict[bytes, bytes | None] = {}
        for key, value in last.items():
            kh = key_hashes.get(key)
            if kh is None:
                kh = key_hashes[key] = sha256(key)
            changes[kh] = None if value is None else sha256(value)
        overlay = None if parent is None else parent.node_overlay()
        with self._env.begin(db=self._dbs[b"smt"]) as txn:
            update = self._smt.prepare(changes, txn.get, overlay)
        return PreparedState(
            root=update.root,
            base_height=base_height,
            base_root=base_root,
            state=last,
            history=history,
            max_tx_index=max_tx_index,
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

    def commit(
        self,
        block: Block,
        receipts: Sequence[Receipt],
        prepared: PreparedState,
        digests: BodyDigests | None = None,
    ) -> None:
        """Append `block` with its receipts and prepared state, durably and atomically.

        When this returns the block is durable and may be acknowledged. A transaction id
        already in the ledger keeps its first location: tx_location, receipt and prove_tx
        answer for the first occurrence; block_receipts still lists every receipt.
        `digests`, when given, are the body's ids and roots as the caller computed them
        (see BodyDigests); without them the ledger computes them itself.
        Raises (having written nothing) WrongHeight, WrongParent, StalePrepared,
        StateRootMismatch, or InvalidBlock for a header that does not match the body or
        receipts; OSError / lmdb.Error on I/O failure (the block is then not committed).
        """
        self._check_open()
        tx_ids = self._check_block(block, receipts, prepared, digests)
        encoded = None if digests is None else digests.encoded_receipts
        receipts_record = _pack_block_receipts(tx_ids, receipts, encoded)
        header = block.header
        block_hash = header.hash
        old_end = self._blocks.end
        offset, length = self._blocks.append(block)
        try:
            self._blocks.sync()
            with self._env.begin(write=True) as txn:
                self._write_index(txn, block, block_hash, tx_ids, receipts_record, prepared)
                txn.put(
                    _U64.pack(header.height),
                    _LOCATION.pack(offset, length),
                    append=True,
                    db=self._dbs[b"blocks"],
                )
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
        self,
        block: Block,
        receipts: Sequence[Receipt],
        prepared: PreparedState,
        digests: BodyDigests | None,
    ) -> list[bytes]:
        """Refuse a block that is not the next one or whose header does not match its body.

        Returns the transaction ids and the receipts as stored (without their tx ids). The
        genesis block (height 0) carries the channel's initial data, not signed transactions:
        its `txs` are committed by tx_root but not decoded, indexed or receipted (tx_count 0,
        no receipts), and its writes' history entries carry an empty tx id.
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
        if digests is None or header.height == 0:
            tx_root = merkle_root(block.txs)
            tx_ids = [] if header.height == 0 else _tx_ids(block)
        else:
            tx_root, tx_ids = digests.tx_root, list(digests.tx_ids)
            if len(tx_ids) != len(block.txs):
                raise InvalidBlock(f"{len(tx_ids)} tx ids for {len(block.txs)} transactions")
        if header.tx_root != tx_root:
            raise InvalidBlock("transactions root does not match the body")
        if header.tx_count != len(tx_ids):
            raise InvalidBlock(f"header counts {header.tx_count} transactions, body has {len(tx_ids)}")
        if len(receipts) != len(tx_ids):
            raise InvalidBlock(f"{len(receipts)} receipts for {len(tx_ids)} transactions")
        if [r.tx_id for r in receipts] != tx_ids:
            i = next(i for i, (r, tx_id) in enumerate(zip(receipts, tx_ids, strict=True)) if r.tx_id != tx_id)
            raise InvalidBlock(f"receipt {i} is for another transaction")
        if digests is None or header.height == 0:
            receipts_root = merkle_root([encode(r) for r in receipts])
        else:
            receipts_root = digests.receipts_root
        if header.receipts_root != receipts_root:
            raise InvalidBlock("receipts root does not match the receipts")
        if header.height > 0 and prepared.max_tx_index >= len(tx_ids):
            raise InvalidBlock(
                f"a write names transaction {prepared.max_tx_index}; the block has {len(tx_ids)}"
            )
        cert = block.certificate
        if cert is not None and (cert.height != header.height or cert.block_hash != header.hash):
            raise InvalidBlock("the commit certificate is for another block")
        return tx_ids

    def _write_index(
        self,
        txn: lmdb.Transaction,
        block: Block,
        block_hash: bytes,
        tx_ids: list[bytes],
        receipts_record: bytes,
        prepared: PreparedState,
    ) -> None:
        height = block.header.height
        _write_all(txn, self._dbs[b"state"], prepared.state.items(), deletes=True)
        _write_all(txn, self._dbs[b"smt"], prepared.smt.nodes.items(), prepared.smt.deletes)
        txn.cursor(db=self._dbs[b"history"]).putmulti(prepared.history.items())
        self._index_txs(txn, height, tx_ids)
        txn.put(
            _U64.pack(height),
            receipts_record,
            append=True,
            db=self._dbs[b"receipts"],
        )
        self._put(txn, b"hashes", block_hash, _U64.pack(height))
        self._put(txn, b"meta", _META_HEAD, encode(block.header))
        if self._chain_id is None:
            self._put(txn, b"meta", _META_CHAIN_ID, block.header.chain_id.encode())

    def _index_txs(self, txn: lmdb.Transaction, height: int, tx_ids: list[bytes]) -> None:
        """Add the block's ids to the tx index. First occurrence wins: a replayed id (marked
        invalid by execution) keeps its original location."""
        txs_db = self._dbs[b"txs"]
        at_height = _uvarint(height)
        items = [(tx_id[:TX_KEY_BYTES], at_height + _uvarint(i)) for i, tx_id in enumerate(tx_ids)]
        _, added = txn.cursor(db=txs_db).putmulti(items, overwrite=False)
        if added == len(items):
            return  # the common case: every prefix was new
        for index, (prefix, location) in enumerate(items):
            existing = txn.get(prefix, db=txs_db)
            if existing is None:
                raise LedgerCorrupt("the tx index refused a key it does not hold")
            if existing != location:  # not this very entry: an earlier id holds the prefix
                self._index_collision(txn, height, tx_ids, index, location, bytes(existing))

    def _index_collision(
        self,
        txn: lmdb.Transaction,
        height: int,
        tx_ids: list[bytes],
        index: int,
        location: bytes,
        existing: bytes,
    ) -> None:
        """tx_ids[index] found its prefix taken: a replay keeps the first location, a
        different id goes to `tx_collisions`."""
        tx_id = tx_ids[index]
        at_height, at_index = _unpack_location(existing)
        if at_height == height:
            holder = tx_ids[at_index]
        else:
            record = txn.get(_U64.pack(at_height), db=self._dbs[b"receipts"])
            if record is None:
                raise LedgerCorrupt(f"the tx index names block {at_height}, which has no record")
            holder = _BlockReceipts(record).tx_id(at_index)
        if holder != tx_id:
            txn.put(tx_id, location, overwrite=False, db=self._dbs[b"tx_collisions"])

    def _find_tx(self, txn: lmdb.Transaction, tx_id: bytes) -> tuple[int, int, _BlockReceipts] | None:
        """(height, index, the block's receipts record) of a committed id, within `txn`."""
        if len(tx_id) != HASH_BYTES:
            return None
        raw = txn.get(tx_id[:TX_KEY_BYTES], db=self._dbs[b"txs"])
        if raw is None:
            return None  # the common answer for a new transaction: one lookup
        for attempt in (raw, txn.get(tx_id, db=self._dbs[b"tx_collisions"])):
            if attempt is None:
                return None
            height, index = _unpack_location(attempt)
            record = txn.get(_U64.pack(height), db=self._dbs[b"receipts"])
            if record is None:
                raise LedgerCorrupt(f"the tx index names block {height}, which has no record")
            block = _BlockReceipts(record)
            if index >= block.count:
                raise LedgerCorrupt(f"the tx index names transaction {index} of block {height}")
            if block.tx_id(index) == tx_id:
                return height, index, block
        raise LedgerCorrupt(f"the tx index misplaces transaction {tx_id.hex()}")

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
        """(height, index in block) of a committed transaction, or None. Raises LedgerCorrupt."""
        with self._env.begin(buffers=True) as txn:
            found = self._find_tx(txn, tx_id)
        return None if found is None else found[:2]

    def has_tx(self, tx_id: bytes) -> bool:
        return self.tx_location(tx_id) is not None

    def tx_ids(self) -> Iterator[bytes]:
        """Every committed transaction id, in index order (e.g. to build an in-memory filter)."""
        with self._env.begin(db=self._dbs[b"txs"]) as txn:
            yield from txn.cursor().iternext(keys=True, values=False)

    def receipt(self, tx_id: bytes) -> Receipt | None:
        """The receipt of a committed transaction, or None. Raises LedgerCorrupt."""
        with self._env.begin(buffers=True) as txn:
            found = self._find_tx(txn, tx_id)
            if found is None:
                return None
            _, index, block = found
            stored = block.receipts()
        if index >= len(stored):
            raise LedgerCorrupt(f"no receipt for transaction {tx_id.hex()}")
        return _receipt(tx_id, stored[index])

    def block_receipts(self, height: int) -> list[Receipt] | None:
        """The receipts of the block at `height`, in transaction order, or None when there is
        no such block. Raises LedgerCorrupt."""
        if height < 0:
            return None
        with self._env.begin(buffers=True) as txn:
            record = txn.get(_U64.pack(height), db=self._dbs[b"receipts"])
            if record is None:
                return None
            block = _BlockReceipts(record)
            stored = block.receipts()
            if len(stored) != block.count:
                raise LedgerCorrupt(f"block {height} has {block.count} tx ids and {len(stored)} receipts")
            return [_receipt(block.tx_id(i), raw) for i, raw in enumerate(stored)]

    def history(self, key: bytes, limit: int = 100) -> list[KeyVersion]:
        """Up to `limit` versions of `key`, newest first (deletions have value None).

        Raises LedgerCorrupt for an unreadable entry.
        """
        if limit <= 0 or not 0 < len(key) <= STATE_KEY_BYTES_MAX:
            return []
        prefix = _history_prefix(key)
        versions: list[KeyVersion] = []
        receipts_db = self._dbs[b"receipts"]
        with self._env.begin(db=self._dbs[b"history"], buffers=True) as txn:
            cursor = txn.cursor()
            # Position on the last entry of this key: just before the first key past it (no
            # height encoding starts with 0xff).
            positioned = cursor.prev() if cursor.set_range(prefix + b"\xff") else cursor.last()
            if not positioned:
                return versions
            for raw_key, raw in cursor.iterprev():
                hist_key = bytes(raw_key)
                if len(versions) >= limit or not hist_key.startswith(prefix):
                    break
                height = _read_sortable_uint(hist_key, len(prefix))
                flat = _unpack_history(bytes(raw))
                record = txn.get(_U64.pack(height), db=receipts_db)
                block = None if record is None else _BlockReceipts(record)
                for i in range(len(flat) - 2, -1, -2):
                    tx_index, value = flat[i], flat[i + 1]
                    if not isinstance(tx_index, int) or isinstance(value, int):
                        raise LedgerCorrupt("unreadable history entry: bad version")
                    # Block-level writes, and all genesis writes, name no transaction.
                    tx_id = b"" if block is None or not 0 <= tx_index < block.count else block.tx_id(tx_index)
                    versions.append(KeyVersion(height, tx_index, tx_id, value))
                    if len(versions) >= limit:
                        break
        return versions

    def index_usage(self) -> dict[str, IndexUsage]:
        """Where the LMDB index's bytes are: one IndexUsage per named database, plus "other"
        for the pages of the file none of them uses: free pages (kept until two commits after
        the one that freed them), LMDB's meta pages, catalogue and free list."""
        usage: dict[str, IndexUsage] = {}
        with self._env.begin() as txn:
            for name, db in self._dbs.items():
                st = txn.stat(db)
                pages = st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]
                usage[name.decode()] = IndexUsage(st["entries"], pages, pages * st["psize"])
            psize = self._env.stat()["psize"]
            total_pages = self._env.info()["last_pgno"] + 1
        other = total_pages - sum(u.pages for u in usage.values())
        usage["other"] = IndexUsage(0, other, other * psize)
        return usage

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


def _write_all(
    txn: lmdb.Transaction,
    db: lmdb._Database,
    items: Iterable[tuple[bytes, bytes | None]],
    deletes: bool,
) -> None:
    """Put every item, or delete its key for a None value (`deletes` False promises there
    is none). Puts go through one cursor.putmulti call: a C loop rather than a Python one."""
    puts: Iterable[tuple[bytes, bytes | None]] = items
    if deletes:
        puts = []
        for key, value in items:
            if value is None:
                txn.delete(key, db=db)
            else:
                puts.append((key, value))
    txn.cursor(db=db).putmulti(cast(Iterable[tuple[bytes, bytes]], puts))


def _history_prefix(key: bytes) -> bytes:
    # Length first: one key's versions are contiguous even when it prefixes another key.
    return _KEY_LENGTHS[len(key)] + key


_KEY_LENGTHS = [_KEY_LENGTH.pack(n) for n in range(STATE_KEY_BYTES_MAX + 1)]


def _group_versions(writes: Sequence[Write]) -> dict[bytes, list[int | bytes | None]]:
    """Per key, [tx_index, value, ...] in transaction order; a transaction's last write wins."""
    by_key: dict[bytes, dict[int, bytes | None]] = {}
    for key, value, tx_index in writes:
        by_key.setdefault(key, {})[tx_index] = value
    versions: dict[bytes, list[int | bytes | None]] = {}
    for key, by_tx in by_key.items():
        flat: list[int | bytes | None] = []
        for tx_index in sorted(by_tx):
            flat += (tx_index, by_tx[tx_index])
        versions[key] = flat
    return versions


def _sortable_uint(n: int) -> bytes:
    """`n` as a length byte and its minimal big-endian bytes: byte order is numeric order."""
    size = max(1, (n.bit_length() + 7) >> 3)
    return bytes((size,)) + n.to_bytes(size, "big")


def _read_sortable_uint(data: bytes, at: int) -> int:
    size = data[at] if at < len(data) else 0
    if not 1 <= size <= 8 or len(data) != at + 1 + size:
        raise LedgerCorrupt("unreadable history key")
    return int.from_bytes(data[at + 1 :], "big")


def _uvarint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL_UVARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_UVARINTS = [bytes((n,)) for n in range(0x80)]


def _pack_location(height: int, index: int) -> bytes:
    return _uvarint(height) + _uvarint(index)


def _unpack_location(raw: bytes | memoryview) -> tuple[int, int]:
    """(height, index) from two LEB128 varints. Raises LedgerCorrupt."""
    numbers: list[int] = []
    n = shift = 0
    for byte in bytes(raw):
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            numbers.append(n)
            n = shift = 0
        elif shift > 63:
            break
    if len(numbers) != 2 or shift:
        raise LedgerCorrupt("unreadable transaction location")
    return numbers[0], numbers[1]


def _pack_history(flat: list[int | bytes | None]) -> bytes:
    """A history entry: a marker byte, then the msgpack list [tx_index, value, ...], plain or
    zlib-compressed."""
    plain = encode(flat)
    if len(plain) >= HISTORY_COMPRESS_MIN:
        packed = zlib.compress(plain, ZLIB_LEVEL)
        if len(packed) < len(plain):
            return _HISTORY_ZLIB + packed
    return _HISTORY_PLAIN + plain


def _unpack_history(raw: bytes) -> list[int | bytes | None]:
    """[tx_index, value, ...] of a history entry. Raises LedgerCorrupt."""
    try:
        if raw[:1] == _HISTORY_ZLIB:
            body = zlib.decompress(raw[1:])
        elif raw[:1] == _HISTORY_PLAIN:
            body = raw[1:]
        else:
            raise LedgerCorrupt("unreadable history entry: unknown marker")
        flat = decode(body, list[int | bytes | None])
    except (zlib.error, CodecError) as exc:
        raise LedgerCorrupt(f"unreadable history entry: {exc}") from exc
    if len(flat) % 2:
        raise LedgerCorrupt("unreadable history entry: odd length")
    return flat


def _pack_block_receipts(
    tx_ids: Sequence[bytes], receipts: Sequence[Receipt], encoded: Sequence[bytes] | None = None
) -> bytes:
    """u32 count | the block's tx ids | zlib(msgpack list of receipts without tx ids).

    `encoded`, when given, holds each receipt's own encoding, from which the list is cut.
    """
    if not receipts:
        return _U32.pack(len(tx_ids)) + b"".join(tx_ids)
    plain = None if encoded is None else _stored_receipts_from(encoded)
    if plain is None:
        plain = encode([_StoredReceipt(r.status, r.error, r.events, r.steps, r.result) for r in receipts])
    return _U32.pack(len(tx_ids)) + b"".join(tx_ids) + zlib.compress(plain, ZLIB_LEVEL)


# How a Receipt's encoding starts: an array of its 6 fields, then the tx id as 32-byte bin.
_RECEIPT_HEAD = b"\x96\xc4\x20"
_STORED_RECEIPT_HEAD = b"\x95"  # the 5 fields left without the tx id


def _stored_receipts_from(encoded: Sequence[bytes]) -> bytes | None:
    """encode([_StoredReceipt...]) cut out of the receipts' encodings (each is the same array
    less its leading tx id), or None should one not start as a Receipt with a 32-byte id."""
    head = len(_RECEIPT_HEAD) + HASH_BYTES
    tails = [e[head:] for e in encoded if e.startswith(_RECEIPT_HEAD)]
    if len(tails) != len(encoded):
        return None
    return _msgpack_array_head(len(tails)) + _STORED_RECEIPT_HEAD + _STORED_RECEIPT_HEAD.join(tails)


def _msgpack_array_head(n: int) -> bytes:
    """The msgpack header of an n-element array, in its shortest form (as msgspec writes it)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class _BlockReceipts:
    """A block's `receipts` record, read lazily: ids by slicing, receipts on demand."""

    def __init__(self, record: bytes | memoryview) -> None:
        if len(record) < _U32.size:
            raise LedgerCorrupt("unreadable receipts record")
        self._record = record
        self.count: int = _U32.unpack_from(record)[0]
        self._body_at = _U32.size + self.count * HASH_BYTES
        if len(record) < self._body_at:
            raise LedgerCorrupt("receipts record shorter than its tx ids")

    def tx_id(self, index: int) -> bytes:
        at = _U32.size + index * HASH_BYTES
        return bytes(self._record[at : at + HASH_BYTES])

    def receipts(self) -> list[msgspec.Raw]:
        """The encoded receipts (without tx ids), each decoded only when asked for."""
        body = self._record[self._body_at :]
        if not body:
            return []
        try:
            return decode(zlib.decompress(body), list[msgspec.Raw])
        except (zlib.error, CodecError) as exc:
            raise LedgerCorrupt(f"unreadable receipts: {exc}") from exc


def _receipt(tx_id: bytes, raw: msgspec.Raw) -> Receipt:
    try:
        r = decode(raw, _StoredReceipt)
    except CodecError as exc:
        raise LedgerCorrupt(f"unreadable receipt: {exc}") from exc
    return Receipt(tx_id, r.status, r.error, r.events, r.steps, r.result)


def _decode_header(raw: bytes) -> Header:
    try:
        return decode(raw, Header)
    except CodecError as exc:
        raise LedgerCorrupt(f"unreadable head header: {exc}") from exc


def _check_write(w: Write) -> None:
    if not isinstance(w.key, bytes) or not 0 < len(w.key) <= STATE_KEY_BYTES_MAX:
        raise InvalidWrite(f"state keys must be 1..{STATE_KEY_BYTES_MAX} bytes")
    if w.value is not None and not isinstance(w.value, bytes):
        raise InvalidWrite("state values must be bytes or None")
    if not isinstance(w.tx_index, int) or w.tx_index < BLOCK_WRITE_INDEX:
        raise InvalidWrite(f"tx_index must be >= {BLOCK_WRITE_INDEX}")
