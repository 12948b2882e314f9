"""The ledger's on-disk layout: compact records that still answer every query exactly."""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_kit import CHANNEL, envelope, genesis, make_block, tx_id

from consortia.crypto import merkle_root
from consortia.ledger import (
    BLOCK_WRITE_INDEX,
    IncompatibleFormat,
    KeyVersion,
    Ledger,
    LedgerCorrupt,
    Write,
    store,
)
from consortia.ledger.store import (
    TX_KEY_BYTES,
    BodyDigests,
    _pack_block_receipts,
    _pack_location,
    _read_sortable_uint,
    _sortable_uint,
    _unpack_location,
)
from consortia.types import Event, Receipt, encode

KEY = b"c/token\x00balance\x00alice"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger.open(tmp_path / "ch1", CHANNEL)
    yield led
    led.close()


def entries(led: Ledger, db: bytes) -> int:
    with led._env.begin() as txn:
        n: int = txn.stat(led._dbs[db])["entries"]
        return n


def rich_receipts(txs: list[bytes]) -> list[Receipt]:
    """Receipts with every kind of field value execution produces."""
    results: list[object] = [None, 7, b"\x00raw", "text", [1, [2, b"x"]], {"a": {"b": None}}, 2**64 - 1]
    out = []
    for i, raw in enumerate(txs):
        events = [Event("token", "Transferred", {"amount": i, "from": "a", "to": f"sink{i}"})] * (i % 3)
        error = "" if i % 3 == 0 else f"failed {i}"
        out.append(Receipt(tx_id(raw), i % 3, error, events, i * 11, results[i % 7]))
    return out


def commit_with(
    led: Ledger, writes: list[Write], txs: list[bytes], receipts: list[Receipt], digested: bool = False
) -> None:
    """Commit a block; `digested` hands over its ids, roots and receipt encodings as the
    node's block processor does."""
    prepared = led.prepare(writes)
    block, rs = make_block(led, prepared, txs, receipts)
    digests = None
    if digested:
        encoded = [encode(r) for r in rs]
        digests = BodyDigests([tx_id(raw) for raw in txs], merkle_root(txs), merkle_root(encoded), encoded)
    led.commit(block, rs, prepared, digests)


def test_receipts_read_back_exactly_and_match_the_header_root(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    txs = [envelope(i) for i in range(40)]
    receipts = rich_receipts(txs)
    with Ledger.open(path, CHANNEL) as led:
        genesis(led)
        commit_with(led, [], txs, receipts)
    with Ledger.open(path, CHANNEL) as led:  # read back from disk, not from anything cached
        stored = led.block_receipts(1)
        assert stored == receipts
        assert merkle_root([encode(r) for r in stored or []]) == led.head.receipts_root  # type: ignore[union-attr]
        for raw, receipt in zip(txs, receipts, strict=True):
            assert led.receipt(tx_id(raw)) == receipt
        # One record per block (genesis included), not one per transaction.
        usage = led.index_usage()
        assert usage["receipts"].entries == 2 and usage["txs"].entries == 40
        assert usage["receipts"].bytes == usage["receipts"].pages * 4096 > 0
        assert usage["other"].pages >= 2  # at least LMDB's two meta pages
        assert sum(u.bytes for u in usage.values()) == os.stat(path / "index" / "data.mdb").st_size


def test_history_is_one_entry_per_key_and_block_and_lists_every_version(ledger: Ledger) -> None:
    genesis(ledger, [Write(KEY, b"0", BLOCK_WRITE_INDEX)])
    txs = [envelope(i) for i in range(30)]
    ids = [tx_id(raw) for raw in txs]
    writes = [Write(KEY, b"%d" % i, i) for i in range(30)]
    writes += [Write(KEY, b"block", BLOCK_WRITE_INDEX), Write(KEY, b"final of 29", 29)]
    writes += [Write(b"c/token\x00balance\x00bob", None, 4)]
    commit_with(ledger, writes, txs, rich_receipts(txs))
    commit_with(ledger, [Write(KEY, None, 0)], [envelope(99)], rich_receipts([envelope(99)]))

    versions = ledger.history(KEY, limit=1000)
    assert versions[0] == KeyVersion(2, 0, tx_id(envelope(99)), None)
    assert versions[1] == KeyVersion(1, 29, ids[29], b"final of 29")  # a transaction's last write wins
    assert versions[2:30] == [KeyVersion(1, i, ids[i], b"%d" % i) for i in range(28, 0, -1)]
    assert versions[30:] == [
        KeyVersion(1, 0, ids[0], b"0"),
        KeyVersion(1, BLOCK_WRITE_INDEX, b"", b"block"),
        KeyVersion(0, BLOCK_WRITE_INDEX, b"", b"0"),
    ]
    assert ledger.history(KEY, limit=3) == versions[:3]  # the limit cuts inside a block's entry
    assert ledger.history(b"c/token\x00balance\x00bob") == [KeyVersion(1, 4, ids[4], None)]
    # alice: genesis, block 1, block 2; bob: block 1.
    assert entries(ledger, b"history") == 4


def test_a_ledger_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    with Ledger.open(path, CHANNEL) as led:
        genesis(led)
    env = lmdb.open(str(path / "index"), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.delete(b"format", db=env.open_db(b"meta", txn=txn))  # as the first layout had it
    env.close()
    with pytest.raises(IncompatibleFormat, match="format 1"):
        Ledger.open(path, CHANNEL)


def test_unreadable_index_records_are_reported_as_corrupt(ledger: Ledger) -> None:
    genesis(ledger)
    raws = [envelope(1), envelope(2)]
    commit_with(ledger, [], raws, rich_receipts(raws))
    first, second = (tx_id(raw) for raw in raws)
    with ledger._env.begin(write=True) as txn:
        txn.put(first[:TX_KEY_BYTES], b"\xff\xff", db=ledger._dbs[b"txs"])  # no location
        txn.put(second[:TX_KEY_BYTES], _pack_location(1, 5), db=ledger._dbs[b"txs"])  # past the end
    for tx in (first, second):
        with pytest.raises(LedgerCorrupt):
            ledger.tx_location(tx)
    with ledger._env.begin(write=True) as txn:
        txn.put((1).to_bytes(8, "big"), b"\x00\x00\x00\x01short", db=ledger._dbs[b"receipts"])
    with pytest.raises(LedgerCorrupt):
        ledger.block_receipts(1)


def test_ids_sharing_an_index_prefix_are_told_apart(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    # With 1-byte index keys, 600 ids collide on prefixes many times over.
    monkeypatch.setattr(store, "TX_KEY_BYTES", 1)
    genesis(ledger)
    blocks = [[envelope(b * 300 + i) for i in range(300)] for b in range(2)]
    for txs in blocks:
        commit_with(ledger, [], txs, rich_receipts(txs))
    replay = blocks[0][:50] + [envelope(10_000 + i) for i in range(50)]
    invalid = [Receipt(tx_id(raw), 2, "duplicate", [], 0) for raw in replay]
    commit_with(ledger, [], replay, invalid)
    assert entries(ledger, b"tx_collisions") > 300
    for height, txs in ((1, blocks[0]), (2, blocks[1]), (3, replay[50:])):
        for index, raw in enumerate(txs, start=50 if height == 3 else 0):
            assert ledger.tx_location(tx_id(raw)) == (height, index) and ledger.has_tx(tx_id(raw))
    first_receipts = rich_receipts(blocks[0])
    for index, raw in enumerate(blocks[0][:50]):  # a replay keeps its first location and receipt
        assert ledger.tx_location(tx_id(raw)) == (1, index)
        assert ledger.receipt(tx_id(raw)) == first_receipts[index]
    for i in range(300):
        assert not ledger.has_tx(tx_id(envelope(20_000 + i)))
        assert ledger.receipt(tx_id(envelope(20_000 + i))) is None


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_locations_pack_and_unpack(height: int, index: int) -> None:
    packed = _pack_location(height, index)
    assert _unpack_location(packed) == (height, index)
    assert len(packed) <= 15


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_sortable_heights_sort_as_numbers(a: int, b: int) -> None:
    ea, eb = _sortable_uint(a), _sortable_uint(b)
    assert (ea < eb) == (a < b) and (ea == eb) == (a == b)
    assert _read_sortable_uint(b"prefix" + ea, 6) == a
    assert ea[0] != 0xFF  # history lookups seek past a key's entries with 0xff


def test_a_hot_keys_history_entry_is_compressed_and_reads_back(ledger: Ledger) -> None:
    genesis(ledger)
    txs = [envelope(i) for i in range(300)]
    writes = [Write(KEY, b"balance %020d" % (10**9 - i), i) for i in range(300)]
    commit_with(ledger, [*writes, Write(b"cold", b"v", 7)], txs, rich_receipts(txs))
    with ledger._env.begin(db=ledger._dbs[b"history"]) as txn:
        stored = {bytes(k): bytes(v) for k, v in txn.cursor()}
    plain = sum(len(w.key) + len(w.value or b"") for w in writes)
    assert [v[:1] for v in stored.values()] == [b"\x00", b"\x01"]  # cold entry plain, hot zlib
    assert max(map(len, stored.values())) < plain // 4
    assert ledger.history(KEY, limit=300) == [
        KeyVersion(1, i, tx_id(txs[i]), b"balance %020d" % (10**9 - i)) for i in range(299, -1, -1)
    ]


def test_an_id_twice_in_one_block_keeps_its_first_location(ledger: Ledger) -> None:
    genesis(ledger)
    raw = envelope(5)
    receipts = [Receipt(tx_id(raw), 0, "", [], 3), Receipt(tx_id(raw), 2, "duplicate", [], 0)]
    commit_with(ledger, [], [raw, raw], receipts)
    assert ledger.tx_location(tx_id(raw)) == (1, 0) and ledger.receipt(tx_id(raw)) == receipts[0]
    assert ledger.block_receipts(1) == receipts
    assert entries(ledger, b"txs") == 1 and entries(ledger, b"tx_collisions") == 0


def index_digest(led: Ledger) -> str:
    """sha256 over every record of every index database and the block file, with zlib bodies
    inflated (compressed bytes may differ between zlib builds; what they hold may not)."""
    digest = hashlib.sha256()
    with led._env.begin() as txn:
        for name, db in sorted(led._dbs.items()):
            for raw_key, raw_value in txn.cursor(db=db):
                key, value = bytes(raw_key), bytes(raw_value)
                if name == b"history" and value[:1] == b"\x01":
                    value = b"\x00" + zlib.decompress(value[1:])
                elif name == b"receipts":
                    count = int.from_bytes(value[:4], "big")
                    at = 4 + 32 * count
                    value = value[:at] + (zlib.decompress(value[at:]) if value[at:] else b"")
                for part in (name, key, value):
                    digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(led.path.joinpath("blocks.dat").read_bytes())
    return digest.hexdigest()


def churn(led: Ledger, height: int) -> None:
    """Block `height` of a fixed history: updates, deletes, inserts and a hot key."""
    keys = [b"acct%03d" % i for i in range(80)]
    txs = [envelope(height * 1_000 + i) for i in range(40)]
    writes = [Write(keys[(height * 5 + i * 7) % 80], b"v%d.%d" % (height, i), i) for i in range(40)]
    writes += [Write(keys[(height * 3 + j) % 80], None, 30 + j) for j in range(3)]
    writes += [Write(KEY, b"hot %d.%d" % (height, i), i) for i in range(0, 40, 3)]
    commit_with(led, writes, txs, rich_receipts(txs), digested=height % 2 == 1)


def test_reopening_midway_changes_nothing(tmp_path: Path) -> None:
    """A ledger closed and reopened between blocks (cold tree and key caches) ends with the
    same records as one that stayed open, and answers from them after reopening."""
    with Ledger.open(tmp_path / "steady", CHANNEL) as steady:
        genesis(steady, [Write(b"acct%03d" % i, b"0", BLOCK_WRITE_INDEX) for i in range(80)])
        for height in range(1, 9):
            churn(steady, height)
        expected, root = index_digest(steady), steady.state_root
    path = tmp_path / "reopened"
    with Ledger.open(path, CHANNEL) as led:
        genesis(led, [Write(b"acct%03d" % i, b"0", BLOCK_WRITE_INDEX) for i in range(80)])
    for height in range(1, 9):
        with Ledger.open(path, CHANNEL) as led:
            churn(led, height)
    with Ledger.open(path, CHANNEL) as led:
        assert led.height == 8 and led.state_root == root
        assert index_digest(led) == expected
        with led._env.begin() as txn:
            assert led._smt.root(lambda k: txn.get(k, db=led._dbs[b"smt"])) == root
        assert led.prove(b"acct007").height == 8
        assert led.history(KEY, limit=1)[0].value == b"hot 8.39"
        assert led.block_receipts(8) == rich_receipts([envelope(8_000 + i) for i in range(40)])


def test_index_records_are_exactly_those_of_format_2(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed history touching every write path (deletes, tree nodes removed, keys written
    several times in a block and out of transaction order, block-level writes, replays,
    index prefix collisions, compressed history) leaves the very records format 2 defines:
    the digest was taken from the straightforward per-key implementation."""
    monkeypatch.setattr(store, "TX_KEY_BYTES", 1)  # many prefix collisions among 300 ids
    keys = [b"c/token\x00\x00balance\x00acct%03d\x00" % i for i in range(120)]
    genesis(ledger, [Write(k, b"%d" % i, BLOCK_WRITE_INDEX) for i, k in enumerate(keys)])
    raws: list[bytes] = []
    for height in range(1, 7):
        txs = [envelope(height * 1_000 + i) for i in range(50)]
        if height > 1:
            txs[10:13] = raws[:3]  # replays of committed ids
            txs[20] = txs[21]  # one id twice in a block
        raws.extend(txs)
        writes = [Write(keys[(height * 7 + i * 13) % 120], b"v%d.%d" % (height, i), i) for i in range(50)]
        writes += [Write(KEY, b"hot %d %020d" % (height, i), i) for i in range(0, 50, 2)]
        writes += [Write(keys[(height * 11 + j) % 120], None, 3 + j) for j in range(height)]
        writes += [Write(b"fresh%d" % height, b"new", 40), Write(KEY, b"late", 1)]  # out of order
        writes.append(Write(b"s/block", b"%d" % height, BLOCK_WRITE_INDEX))
        commit_with(ledger, writes, txs, rich_receipts(txs), digested=height % 2 == 0)
    assert entries(ledger, b"tx_collisions") > 0
    assert index_digest(ledger) == "2c5a6f0db9845860c3ce14de493d80d1be98e97ec3d5379c46d92e0a04498166"


@pytest.mark.parametrize("count", [1, 15, 16, 300, 65_535, 65_536])
def test_receipts_record_cut_from_encodings_is_the_one_encoded(count: int) -> None:
    """The record made from the executor's receipt encodings is byte for byte the one made
    by encoding the receipts without their ids (array headers of every size included)."""
    txs = [envelope(i) for i in range(min(count, 300))]
    receipts = rich_receipts(txs)
    receipts = [receipts[i % len(receipts)] for i in range(count)]
    ids = [r.tx_id for r in receipts]
    encoded = [encode(r) for r in receipts]
    assert _pack_block_receipts(ids, receipts, encoded) == _pack_block_receipts(ids, receipts)
    # An encoding that does not start as a receipt with a 32-byte id is not cut: the
    # receipts are encoded instead.
    odd = [b"\x00" + e[1:] for e in encoded]
    assert _pack_block_receipts(ids, receipts, odd) == _pack_block_receipts(ids, receipts)
