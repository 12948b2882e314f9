"""Peer network over real loopback sockets with real consortium certificates."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import pytest
from network_kit import (
    ORGS,
    NetNode,
    channel_with_validators,
    eventually,
    make_node,
    node_names,
    run,
    with_nodes,
)

from consortia.identity import MSP, generate_consortium, revoke
from consortia.identity.layout import SIGNCERT, node_dir
from consortia.identity.wallet import load_node_identity
from consortia.network import (
    BadNetworkConfig,
    NetworkLimits,
    PeerNetwork,
    channel_tls_roots,
    make_tls_contexts,
)
from consortia.network.framing import KIND_CHALLENGE, FrameDecoder, decode_frame


def four_nodes(crypto: Path, **limits: int) -> list[NetNode]:
    config = channel_with_validators(crypto, [(org, f"peer0.{org}") for org in ORGS])
    kw = NetworkLimits(reconnect_min_ms=20, reconnect_max_ms=300, hello_timeout_ms=2000, **limits)
    return [make_node(crypto, config, name, kw) for name in node_names()]


@pytest.mark.parametrize("uv", [False, True], ids=["asyncio", "uvloop"])
def test_four_nodes_exchange_messages_both_ways(crypto: Path, uv: bool) -> None:
    nodes = four_nodes(crypto)

    async def body() -> None:
        for node in nodes:
            assert await node.network.wait_connected(timeout_s=10)
            assert node.network.connected_peers() == sorted(set(node_names()) - {node.name})
        for node in nodes:
            assert node.network.broadcast(b"all from " + node.name.encode()) == 3
            for other in nodes:
                if other is not node:
                    assert node.network.send(other.name, f"{node.name}->{other.name}".encode())
        await eventually(lambda: all(len(n.inbox.messages) == 6 for n in nodes), what="6 messages each")
        for node in nodes:
            # the sender is the name proven by the peer's certificate
            senders = sorted({s for s, _ in node.inbox.messages})
            assert senders == sorted(set(node_names()) - {node.name})
            for sender, payload in node.inbox.messages:
                assert payload in (b"all from " + sender.encode(), f"{sender}->{node.name}".encode())
        assert not nodes[0].network.send("nobody", b"x")

    run(lambda: with_nodes(nodes, body), uv=uv)


def test_broadcast_of_another_kind_reaches_its_handler_on_every_peer(crypto: Path) -> None:
    nodes = four_nodes(crypto)
    got: dict[str, list[tuple[str, bytes]]] = {n.name: [] for n in nodes}
    for node in nodes:
        node.network.add_handler("gossip", lambda s, p, name=node.name: got[name].append((s, p)))

    async def body() -> None:
        for node in nodes:
            assert await node.network.wait_connected(timeout_s=10)
        sender = nodes[0]
        assert sender.network.broadcast_kind("gossip", b"txs") == 3
        await eventually(lambda: all(got[n.name] for n in nodes[1:]), what="gossip on every peer")
        assert got[sender.name] == []
        assert all(got[n.name] == [(sender.name, b"txs")] for n in nodes[1:])
        assert all(n.inbox.messages == [] for n in nodes)  # not delivered as consensus

    run(lambda: with_nodes(nodes, body))


def test_network_refuses_an_identity_that_is_not_the_configured_validator(crypto: Path) -> None:
    config = channel_with_validators(crypto, [(org, f"peer0.{org}") for org in ORGS])
    other = load_node_identity(crypto, "org1", "peer1.org1")
    with pytest.raises(BadNetworkConfig):
        make_node(crypto, config, "peer0.org1", identity=other)
    with pytest.raises(BadNetworkConfig):  # not a validator at all
        tls = make_tls_contexts(other.tls_cert_path, other.tls_key_path, channel_tls_roots(config))
        PeerNetwork("peer1.org1", config, tls, MSP(config), other, lambda s, p: None)


def _address(node: NetNode) -> tuple[str, int]:
    v = next(v for v in node.network.config.consensus.validators if v.name == node.name)
    host, port = v.address.rsplit(":", 1)
    return host, int(port)


async def _raw_client(ctx: ssl.SSLContext, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")


async def _read_all(reader: asyncio.StreamReader, timeout_s: float = 3.0) -> bytes | Exception:
    """Everything the server sends until it closes; the exception if it resets instead."""
    data = b""
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await reader.read(65536):
                data += chunk
    except (OSError, ConnectionError) as exc:  # ssl.SSLError is an OSError
        return exc
    return data


def test_node_of_another_consortium_fails_the_tls_handshake(crypto: Path, foreign_crypto: Path) -> None:
    nodes = four_nodes(crypto)[:1]
    config = nodes[0].network.config
    foreign = load_node_identity(foreign_crypto, "org1", "peer0.org1")

    async def body() -> None:
        port = _address(nodes[0])[1]
        # The foreign node trusts our CAs but presents a certificate from its own TLS CA.
        ctx = make_tls_contexts(foreign.tls_cert_path, foreign.tls_key_path, channel_tls_roots(config)).client
        try:
            reader, writer = await _raw_client(ctx, port)
        except (OSError, ConnectionError):
            pass  # refused during the handshake itself
        else:
            result = await _read_all(reader)
            # never a single frame: the server refused the certificate before HELLO
            assert isinstance(result, Exception) or result == b""
            writer.close()
        # And it trusts only its own CAs: our server certificate fails its verification.
        own = make_tls_contexts(
            foreign.tls_cert_path, foreign.tls_key_path, [_tlsca_der(foreign_crypto)]
        ).client
        with pytest.raises(ssl.SSLCertVerificationError):
            await _raw_client(own, port)
        assert nodes[0].network.connected_peers() == []

    run(lambda: with_nodes(nodes, body))


def _tlsca_der(crypto: Path) -> bytes:
    from consortia.identity.genesis import org_config

    return org_config(crypto, "org1").tls_ca_certs[0]


def test_revoked_node_is_refused_at_hello(tmp_path: Path) -> None:
    generate_consortium(tmp_path, ORGS, nodes=1, clients=0)
    revoke(tmp_path, "org4", node_dir(tmp_path, "org4", "peer0.org4") / SIGNCERT)
    config = channel_with_validators(tmp_path, [(org, f"peer0.{org}") for org in ORGS])
    org4 = config.org("org4")
    assert org4 is not None and org4.crls
    nodes = [make_node(tmp_path, config, name) for name in node_names()]
    honest, revoked = nodes[:3], nodes[3]

    async def body() -> None:
        for node in honest:
            assert await node.network.wait_connected([n.name for n in honest if n is not node], timeout_s=10)
        # its TLS certificate is fine, so it gets through TLS and keeps trying: give it time
        await asyncio.sleep(0.5)
        for node in honest:
            assert revoked.name not in node.network.connected_peers()
        assert revoked.network.connected_peers() == []

    run(lambda: with_nodes(nodes, body))


def test_oversized_frame_closes_the_connection(crypto: Path) -> None:
    config = channel_with_validators(crypto, [("org1", "peer0.org1"), ("org2", "peer0.org2")])
    small = NetworkLimits(frame_bytes_max=4096, reconnect_min_ms=20, reconnect_max_ms=200)
    a = make_node(crypto, config, "peer0.org1")
    b = make_node(crypto, config, "peer0.org2", small)

    async def body() -> None:
        assert await a.network.wait_connected(timeout_s=10)
        first = b.network.connected_peers
        assert a.network.send(b.name, b"x" * 10_000)  # a allows it; b's limit is 4 KiB
        await eventually(lambda: a.name not in first(), what="b cut the connection")
        assert b.inbox.messages == []
        # a redials. Until a notices the cut it may still queue on the dead link (a lost
        # frame, as any link failure loses; consensus resends), so send until one arrives.
        async with asyncio.timeout(10):
            while not b.inbox.messages:
                a.network.send(b.name, b"small")
                await asyncio.sleep(0.05)
        assert set(b.inbox.messages) == {(a.name, b"small")}  # never the oversized frame

        # Before HELLO even the handshake limit (64 KiB) applies to strangers with a
        # consortium TLS certificate: an announced 4 GiB frame closes at once.
        peer1 = load_node_identity(crypto, "org3", "peer1.org3")
        ctx = make_tls_contexts(peer1.tls_cert_path, peer1.tls_key_path, channel_tls_roots(config)).client
        reader, writer = await _raw_client(ctx, _address(a)[1])
        writer.write(b"\xff\xff\xff\xff")
        result = await _read_all(reader)
        assert not isinstance(result, Exception)
        frames = FrameDecoder().feed(result)
        assert [decode_frame(f).kind for f in frames] == [KIND_CHALLENGE]  # then closed
        writer.close()

    run(lambda: with_nodes([a, b], body))


def test_reconnects_after_either_side_restarts(crypto: Path) -> None:
    config = channel_with_validators(crypto, [("org1", "peer0.org1"), ("org2", "peer0.org2")])
    dialer, listener = make_node(crypto, config, "peer0.org1"), make_node(crypto, config, "peer0.org2")

    async def exchange(x: NetNode, y: NetNode, tag: bytes) -> None:
        assert await x.network.wait_connected(timeout_s=10) and await y.network.wait_connected(timeout_s=10)
        assert x.network.send(y.name, tag) and y.network.send(x.name, tag)
        await eventually(lambda: tag in y.inbox.payloads(x.name) and tag in x.inbox.payloads(y.name))

    async def body() -> None:
        nonlocal dialer, listener
        await dialer.network.start()
        await listener.network.start()
        await exchange(dialer, listener, b"before")
        await listener.network.close()
        await eventually(lambda: dialer.network.connected_peers() == [])
        await asyncio.sleep(0.2)  # a few failed redials with backoff
        listener = make_node(crypto, config, listener.name)
        await listener.network.start()
        await exchange(dialer, listener, b"listener restarted")

        await dialer.network.close()
        dialer = make_node(crypto, config, dialer.name)
        await dialer.network.start()
        await exchange(dialer, listener, b"dialer restarted")
        await dialer.network.close()
        await listener.network.close()

    run(body)


def test_blocked_peer_does_not_block_broadcast_to_others(crypto: Path) -> None:
    config = channel_with_validators(crypto, [(org, f"peer0.{org}") for org in ORGS[:3]])
    tight = NetworkLimits(queue_frames_max=64, write_buffer_bytes_max=64 * 1024)
    sender, fast, stuck = (make_node(crypto, config, f"peer0.{org}", tight) for org in ORGS[:3])
    payload = b"p" * 4096
    count = 2000

    async def body() -> None:
        for node in (sender, fast, stuck):
            assert await node.network.wait_connected(timeout_s=10)
        # The stuck node stops reading; a small send buffer makes the sender feel it soon.
        stuck_conn = stuck.network._peers[sender.name]
        to_stuck = sender.network._peers[stuck.name]
        assert stuck_conn.transport is not None and to_stuck.transport is not None
        to_stuck.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        stuck_conn.transport.pause_reading()

        slowest = 0.0
        for i in range(count):
            started = time.perf_counter()
            assert sender.network.broadcast(i.to_bytes(4, "big") + payload) == 2
            slowest = max(slowest, time.perf_counter() - started)
            if i % 16 == 15:
                await asyncio.sleep(0.001)  # let the loop deliver, as a real node's loop does
        assert slowest < 0.05  # broadcast only queues

        await eventually(lambda: len(fast.inbox.messages) == count, timeout_s=10, what="fast peer got all")
        assert [int.from_bytes(p[:4], "big") for _, p in fast.inbox.messages] == list(range(count))
        stats = sender.network.stats()
        assert stats[stuck.name].dropped > 0
        assert stats[fast.name].dropped == 0

        stuck_conn.transport.resume_reading()  # the newest frames were kept, the oldest dropped
        await eventually(lambda: stuck.inbox.payloads()[-1:] == [(count - 1).to_bytes(4, "big") + payload])
        got = [int.from_bytes(p[:4], "big") for p in stuck.inbox.payloads()]
        assert got == sorted(got) and len(got) < count

    run(lambda: with_nodes([sender, fast, stuck], body))
