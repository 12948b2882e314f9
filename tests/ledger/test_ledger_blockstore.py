"""Block file: framing, checksums, torn tails and recovery."""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.crypto import ZERO_HASH
from consortia.ledger import BlockStore, CorruptBlock, LedgerCorrupt
from consortia.ledger.blockstore import RECORD_HEADER_BYTES
from consortia.types import Block, Header, encode


def block(height: int, txs: int = 2) -> Block:
    header = Header("c", "ch", height, ZERO_HASH, 1000 + height, "n0", ZERO_HASH, ZERO_HASH, ZERO_HASH, txs)
    return Block(header, [b"tx-%d-%d" % (height, i) for i in range(txs)])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BlockStore]:
    s = BlockStore.open(tmp_path / "blocks.dat")
    yield s
    s.close()


def fill(store: BlockStore, n: int) -> list[tuple[int, int]]:
    spots = [store.append(block(h)) for h in range(n)]
    store.sync()
    return spots


def test_append_returns_contiguous_records_that_read_back(store: BlockStore) -> None:
    spots = fill(store, 3)
    assert spots[0][0] == 0
    for (off, length), (next_off, _) in itertools.pairwise(spots):
        assert next_off == off + length
    assert store.end == spots[-1][0] + spots[-1][1] == os.path.getsize(store.path)
    for h, (off, length) in enumerate(spots):
        assert store.read(off, length) == block(h)
        assert store.read(off) == block(h)  # length from the record header
        assert store.read_payload(off, length) == encode(block(h))


def test_record_framing_is_length_crc_payload_big_endian(store: BlockStore) -> None:
    import zlib

    _, length = store.append(block(0))
    raw = store.path.read_bytes()
    payload = encode(block(0))
    assert raw == struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    assert length == RECORD_HEADER_BYTES + len(payload)


@pytest.mark.parametrize("cut", [1, RECORD_HEADER_BYTES - 1, RECORD_HEADER_BYTES + 3, -1])
def test_torn_tail_is_found_and_cut_earlier_blocks_intact(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "blocks.dat"
    s = BlockStore.open(path)
    spots = fill(s, 3)
    good_end = s.end
    # A fourth record torn by a crash: only part of it reached the disk.
    record = path.read_bytes()[spots[2][0] :]
    torn = record[:cut] if cut > 0 else record[: len(record) - 1]
    with open(path, "ab") as f:
        f.write(torn)
    s.close()

    s = BlockStore.open(path)
    assert s.scan_end() == good_end
    assert s.recover(good_end) is True
    assert os.path.getsize(path) == good_end
    assert [s.read(o, n) for o, n in spots] == [block(0), block(1), block(2)]
    # Appending after recovery lands right after the last good record.
    assert s.append(block(3))[0] == good_end
    s.close()


def test_garbage_after_last_record_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "blocks.dat"
    s = BlockStore.open(path)
    fill(s, 2)
    good_end = s.end
    s.close()
    with open(path, "ab") as f:
        f.write(b"\xff" * 100)  # a length far past the end of the file
    s = BlockStore.open(path)
    assert s.scan_end() == good_end
    s.recover(good_end)
    assert path.stat().st_size == good_end
    assert s.recover(good_end) is False  # nothing left to cut
    s.close()


def test_checksum_corruption_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "blocks.dat"
    s = BlockStore.open(path)
    spots = fill(s, 3)
    s.close()
    off, length = spots[1]
    data = bytearray(path.read_bytes())
    data[off + length - 2] ^= 0x01  # flip one payload bit of block 1
    path.write_bytes(bytes(data))
    s = BlockStore.open(path)
    with pytest.raises(CorruptBlock, match="checksum"):
        s.read(off, length)
    assert s.read(*spots[0]) == block(0)
    # The scan stops at the first bad record.
    assert s.scan_end() == spots[0][1]
    assert [o for o, _, _ in s.records()] == [0]
    s.close()


def test_index_length_disagreeing_with_record_is_corrupt(store: BlockStore) -> None:
    spots = fill(store, 2)
    off, length = spots[0]
    with pytest.raises(CorruptBlock):
        store.read(off, length - 1)
    with pytest.raises(CorruptBlock):
        store.read(store.end + 10)


def test_payload_that_is_not_a_block_is_corrupt(store: BlockStore) -> None:
    off, length = store.append_payload(b"\x93not a block")
    with pytest.raises(CorruptBlock, match="not a block"):
        store.read(off, length)


def test_recover_refuses_a_file_shorter_than_acknowledged(store: BlockStore) -> None:
    fill(store, 2)
    with pytest.raises(LedgerCorrupt):
        store.recover(store.end + 1)
    assert store.recover(0) is True
    assert store.end == 0 and store.scan_end() == 0
