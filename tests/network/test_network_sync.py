"""Block sync: a node catches up from peers and never applies a block that fails verification."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from network_kit import ORGS, channel_with_validators, eventually, make_node, run, with_nodes

from consortia.crypto import ZERO_HASH
from consortia.network import BlockSyncer, SyncError, SyncLimits, SyncRequest, SyncResponse, SyncServer
from consortia.network.framing import KIND_SYNC_RESPONSE
from consortia.types import Block, Header, encode

Handler = Callable[[str, bytes], None]


def make_chain(length: int, tamper_at: int | None = None) -> list[Block]:
    """Blocks 1..length linked by parent hash; `tamper_at` breaks the link at that height."""
    blocks: list[Block] = []
    parent = ZERO_HASH
    for height in range(1, length + 1):
        link = b"\xee" * 32 if height == tamper_at else parent
        header = Header("sync-chain", "main", height, link, 1000 + height, "p", b"", b"", b"", 0)
        blocks.append(Block(header, [f"tx{height}".encode()]))
        parent = blocks[-1].hash
    return blocks


def reader(chain: list[Block]) -> Callable[[int], bytes | None]:
    encoded = {b.header.height: encode(b) for b in chain}
    return encoded.get


class Ledger:
    """The node side: verify() checks linkage to the last applied block, apply() appends."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []

    @property
    def head(self) -> bytes:
        return self.blocks[-1].hash if self.blocks else ZERO_HASH

    def verify(self, block: Block) -> bool:
        return block.header.parent_hash == self.head and block.header.height == len(self.blocks) + 1

    def apply(self, block: Block) -> None:
        assert self.verify(block)
        self.blocks.append(block)


# ---- over real sockets ---------------------------------------------------------------
def test_sync_fetches_fifty_blocks_from_a_peer(crypto: Path) -> None:
    config = channel_with_validators(crypto, [("org1", "peer0.org1"), ("org2", "peer0.org2")])
    server, client = make_node(crypto, config, "peer0.org1"), make_node(crypto, config, "peer0.org2")
    chain = make_chain(50)
    served = server.network.serve_sync(reader(chain), SyncLimits(blocks_max=16))
    ledger = Ledger()
    syncer = BlockSyncer(client.network, ledger.verify, ledger.apply)

    async def body() -> None:
        assert await client.network.wait_connected(timeout_s=10)
        assert await syncer.sync(1, 50) == 50
        assert ledger.blocks == chain
        assert served.served == 50

    run(lambda: with_nodes([server, client], body))


def test_sync_rejects_a_peer_serving_a_bad_block_and_finishes_from_another(crypto: Path) -> None:
    names = [f"peer0.{org}" for org in ORGS[:3]]
    config = channel_with_validators(crypto, [(org, f"peer0.{org}") for org in ORGS[:3]])
    evil, honest, client = (make_node(crypto, config, name) for name in names)
    chain = make_chain(50)
    evil.network.serve_sync(reader(make_chain(50, tamper_at=10)))
    honest.network.serve_sync(reader(chain))
    ledger = Ledger()
    syncer = BlockSyncer(client.network, ledger.verify, ledger.apply)

    async def body() -> None:
        assert await client.network.wait_connected(timeout_s=10)
        assert await syncer.sync(1, 50, prefer=[evil.name]) == 50
        assert ledger.blocks == chain  # 1..9 from the evil peer were genuine; 10.. from honest
        assert syncer.rejected == {evil.name: 1}

    run(lambda: with_nodes([evil, honest, client], body))


# ---- without sockets -------------------------------------------------------------------
class Hub:
    """Connects fake transports in one loop; `silent` peers swallow what they are sent."""

    def __init__(self) -> None:
        self.nodes: dict[str, FakeTransport] = {}
        self.silent: set[str] = set()


class FakeTransport:
    def __init__(self, hub: Hub, name: str) -> None:
        self.hub, self.name = hub, name
        self.handlers: dict[str, Handler] = {}
        hub.nodes[name] = self

    def send_kind(self, peer: str, kind: str, payload: bytes) -> bool:
        target = self.hub.nodes.get(peer)
        if target is None:
            return False
        if peer not in self.hub.silent:
            handler = target.handlers[kind]
            asyncio.get_running_loop().call_soon(handler, self.name, payload)
        return True

    def connected_peers(self) -> list[str]:
        return sorted(n for n in self.hub.nodes if n != self.name)

    def add_handler(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler


FAST = SyncLimits(request_timeout_ms=50, failures_max=4, retry_ms=5)


def test_server_answers_within_its_limits() -> None:
    chain = make_chain(20)
    server = SyncServer(FakeTransport(Hub(), "s"), reader(chain), SyncLimits(blocks_max=5, bytes_max=10**6))
    assert server.answer(SyncRequest(1, 3, 100)).blocks == [encode(b) for b in chain[2:7]]
    assert server.answer(SyncRequest(2, 18, 30)).blocks == [encode(b) for b in chain[17:]]  # up to the tip
    assert server.answer(SyncRequest(3, 21, 30)).blocks == []
    size = len(encode(chain[0]))
    by_bytes = SyncServer(FakeTransport(Hub(), "t"), reader(chain), SyncLimits(bytes_max=2 * size + 1))
    assert len(by_bytes.answer(SyncRequest(4, 1, 20)).blocks) == 2
    tiny = SyncServer(FakeTransport(Hub(), "u"), reader(chain), SyncLimits(bytes_max=1))
    assert len(tiny.answer(SyncRequest(5, 1, 20)).blocks) == 1  # one block always goes


def test_server_ignores_malformed_and_backwards_requests() -> None:
    hub = Hub()
    server = SyncServer(FakeTransport(hub, "s"), reader(make_chain(3)))
    server.handle("c", b"\xc1")
    server.handle("c", encode(SyncRequest(1, 5, 2)))
    server.handle("c", encode(SyncRequest(2, -1, 2)))
    assert server.refused == 3 and server.served == 0


def test_silent_peer_times_out_and_the_next_one_serves() -> None:
    async def main() -> None:
        hub = Hub()
        chain = make_chain(30)
        SyncServer(FakeTransport(hub, "a-silent"), reader(chain))
        SyncServer(FakeTransport(hub, "b-honest"), reader(chain))
        hub.silent.add("a-silent")
        ledger = Ledger()
        syncer = BlockSyncer(FakeTransport(hub, "me"), ledger.verify, ledger.apply, FAST)
        assert await syncer.sync(1, 30) == 30
        assert ledger.blocks == chain and syncer.rejected == {}

    run(main)


def test_sync_gives_up_without_peers_or_progress() -> None:
    async def main() -> None:
        hub = Hub()
        ledger = Ledger()
        syncer = BlockSyncer(FakeTransport(hub, "me"), ledger.verify, ledger.apply, FAST)
        with pytest.raises(SyncError, match="no peer"):
            await syncer.sync(1, 5)
        SyncServer(FakeTransport(hub, "short"), reader(make_chain(3)))
        with pytest.raises(SyncError, match="no progress"):
            await syncer.sync(1, 5)  # it has only 3 blocks: the rest never comes
        assert len(ledger.blocks) == 3

    run(main)


class Liar:
    """A peer that answers every request with the given block list."""

    def __init__(self, hub: Hub, name: str, blocks: list[bytes]) -> None:
        self.transport = FakeTransport(hub, name)
        self.blocks = blocks
        self.transport.add_handler("sync_request", self.handle)

    def handle(self, sender: str, payload: bytes) -> None:
        from consortia.types import decode

        request = decode(payload, SyncRequest)
        self.transport.send_kind(
            sender, KIND_SYNC_RESPONSE, encode(SyncResponse(request.request_id, self.blocks))
        )


@pytest.mark.parametrize(
    "served",
    [
        [b"not a block"],
        [encode(make_chain(3)[1])],  # height 2 when 1 was asked
        [encode(b) for b in make_chain(70)],  # more than asked (blocks_max 64)
    ],
    ids=["garbage", "wrong-height", "too-many"],
)
def test_peers_serving_malformed_answers_are_excluded(served: list[bytes]) -> None:
    async def main() -> None:
        hub = Hub()
        chain = make_chain(10)
        Liar(hub, "a-liar", served)
        SyncServer(FakeTransport(hub, "b-honest"), reader(chain))
        ledger = Ledger()
        syncer = BlockSyncer(FakeTransport(hub, "me"), ledger.verify, ledger.apply, FAST)
        assert await syncer.sync(1, 10) == 10
        assert ledger.blocks == chain and syncer.rejected == {"a-liar": 1}

    run(main)


def test_async_verify_and_apply_and_stale_responses() -> None:
    async def main() -> None:
        hub = Hub()
        chain = make_chain(5)
        SyncServer(FakeTransport(hub, "s"), reader(chain))
        ledger = Ledger()

        async def verify(block: Block) -> bool:
            await asyncio.sleep(0)
            return ledger.verify(block)

        async def apply(block: Block) -> None:
            await asyncio.sleep(0)
            ledger.apply(block)

        me = FakeTransport(hub, "me")
        syncer = BlockSyncer(me, verify, apply)
        assert await syncer.sync(1, 5) == 5
        # a response nobody asked for is ignored
        me.handlers[KIND_SYNC_RESPONSE]("s", encode(SyncResponse(999, [encode(chain[0])])))
        me.handlers[KIND_SYNC_RESPONSE]("s", b"\xc1")
        await eventually(lambda: True)
        assert ledger.blocks == chain

    run(main)
