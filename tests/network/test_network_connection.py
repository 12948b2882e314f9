"""A connection's writer: bulk frames (transaction gossip) never delay or displace the others."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from consortia.network.connection import Connection, ConnectionOwner, NetworkLimits


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def _connection(**limits: int) -> tuple[Connection, _Transport]:
    conn = Connection(cast(ConnectionOwner, object()), NetworkLimits(**limits))
    transport = _Transport()
    conn.transport = cast(Any, transport)  # the writer only needs write()
    return conn, transport


def test_queued_consensus_frames_are_written_before_queued_bulk_frames() -> None:
    async def body() -> None:
        conn, transport = _connection()
        conn.pause_writing()  # a slow peer: everything queues
        conn.send(b"gossip-1", bulk=True)
        conn.send(b"vote-1")
        conn.send(b"gossip-2", bulk=True)
        conn.send(b"vote-2")
        assert conn.queued == 4
        conn.resume_writing()
        await asyncio.sleep(0)
        assert transport.writes == [b"vote-1vote-2", b"gossip-1gossip-2"]
        assert conn.queued == 0

    asyncio.run(body())


def test_a_full_bulk_queue_drops_gossip_not_consensus_frames() -> None:
    async def body() -> None:
        conn, transport = _connection(queue_frames_max=2)
        conn.pause_writing()
        conn.send(b"vote")
        for i in range(5):
            conn.send(b"gossip-%d" % i, bulk=True)
        assert conn.dropped == 3
        conn.resume_writing()
        await asyncio.sleep(0)
        assert transport.writes == [b"vote", b"gossip-3gossip-4"]

    asyncio.run(body())
