"""The append-only block file of one channel.

Each record is [u32 length][u32 crc32 of payload][payload], big-endian, where the payload
is the canonical encoding of a Block. The file holds no index: the ledger's LMDB index
records where each block starts and where the last acknowledged record ends, and on open
everything after that end is cut off (a torn write, or a block appended but never indexed).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from consortia.ledger.errors import CorruptBlock, LedgerCorrupt
from consortia.types import Block, CodecError, decode, encode

RECORD_HEADER = struct.Struct(">II")
RECORD_HEADER_BYTES = RECORD_HEADER.size
PAYLOAD_BYTES_MAX = 2**32 - 1


class BlockStore:
    """Appends and reads block records by offset. Not safe for concurrent writers."""

    def __init__(self, path: Path, fd: int) -> None:
        self._path = path
        self._fd = fd
        self._end = os.fstat(fd).st_size

    @classmethod
    def open(cls, path: Path) -> BlockStore:
        """Open (creating if needed) the block file at `path`. Raises OSError."""
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if created:
            # Make the new file's directory entry durable too.
            _fsync_dir(path.parent)
        return cls(path, fd)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def end(self) -> int:
        """Offset just past the last appended record."""
        return self._end

    def append(self, block: Block) -> tuple[int, int]:
        """Write one record at the end; returns (offset, record length). Not durable until sync().

        Raises ValueError for a block too large for one record, OSError on a failed write
        (the file is then cut back to where it was).
        """
        return self.append_payload(encode(block))

    def append_payload(self, payload: bytes) -> tuple[int, int]:
        """As append(), for a block already encoded."""
        if len(payload) > PAYLOAD_BYTES_MAX:
            raise ValueError(f"block of {len(payload)} bytes does not fit one record")
        record = RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        offset = self._end
        try:
            _pwrite_all(self._fd, record, offset)
        except OSError:
            # Leave no partial record behind for a later append to sit after.
            os.ftruncate(self._fd, offset)
            raise
        self._end = offset + len(record)
        return offset, len(record)

    def sync(self) -> None:
        """Make every appended record durable. Raises OSError."""
        os.fdatasync(self._fd)

    def read_payload(self, offset: int, length: int | None = None) -> bytes:
        """The verified payload of the record at `offset` (`length` = whole record, if known).

        Raises CorruptBlock when the record is cut short, its length disagrees or its
        checksum fails.
        """
        if offset < 0 or offset + RECORD_HEADER_BYTES > self._end:
            raise CorruptBlock(f"no record at offset {offset}")
        if length is not None:
            if length < RECORD_HEADER_BYTES or offset + length > self._end:
                raise CorruptBlock(f"record at offset {offset} runs past the end of the file")
            record = os.pread(self._fd, length, offset)
        else:
            record = os.pread(self._fd, RECORD_HEADER_BYTES, offset)
        if len(record) < RECORD_HEADER_BYTES:
            raise CorruptBlock(f"short read of the record at offset {offset}")
        size, crc = RECORD_HEADER.unpack_from(record)
        total = RECORD_HEADER_BYTES + size
        if length is not None and total != length:
            raise CorruptBlock(f"record at offset {offset} is {total} bytes, index says {length}")
        if offset + total > self._end:
            raise CorruptBlock(f"record at offset {offset} runs past the end of the file")
        if length is None:
            record += os.pread(self._fd, size, offset + RECORD_HEADER_BYTES)
        if len(record) != total:
            raise CorruptBlock(f"short read of the record at offset {offset}")
        payload = record[RECORD_HEADER_BYTES:]
        if zlib.crc32(payload) != crc:
            raise CorruptBlock(f"checksum mismatch in the record at offset {offset}")
        return payload

    def read(self, offset: int, length: int | None = None) -> Block:
        """The block in the record at `offset`. Raises CorruptBlock."""
        payload = self.read_payload(offset, length)
        try:
            return decode(payload, Block)
        except CodecError as exc:
            raise CorruptBlock(f"record at offset {offset} is not a block: {exc}") from exc

    def records(self) -> Iterator[tuple[int, int, bytes]]:
        """(offset, record length, payload) of each intact record from the start, stopping at
        the first record that is cut short or fails its checksum."""
        offset = 0
        size_on_disk = os.fstat(self._fd).st_size
        while offset + RECORD_HEADER_BYTES <= size_on_disk:
            size, crc = RECORD_HEADER.unpack(os.pread(self._fd, RECORD_HEADER_BYTES, offset))
            total = RECORD_HEADER_BYTES + size
            if offset + total > size_on_disk:
                return
            payload = os.pread(self._fd, size, offset + RECORD_HEADER_BYTES)
            if len(payload) != size or zlib.crc32(payload) != crc:
                return
            yield offset, total, payload
            offset += total

    def scan_end(self) -> int:
        """Offset just past the last intact record (for tooling and tests; reads the whole file)."""
        end = 0
        for offset, total, _ in self.records():
            end = offset + total
        return end

    def recover(self, valid_end: int) -> bool:
        """Cut the file back to `valid_end`, the end of the last acknowledged record.

        Returns True when something was cut. Raises LedgerCorrupt when the file is shorter
        than `valid_end` (acknowledged blocks are missing), OSError on a failed truncate.
        """
        size = os.fstat(self._fd).st_size
        if size < valid_end:
            raise LedgerCorrupt(f"block file {self._path} has {size} bytes, the index needs {valid_end}")
        self._end = valid_end
        if size == valid_end:
            return False
        os.ftruncate(self._fd, valid_end)
        os.fsync(self._fd)
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
