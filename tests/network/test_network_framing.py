"""Framing, outbound queues, limits, addresses and TLS contexts (no sockets)."""

from __future__ import annotations

import itertools
import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from network_kit import ORGS, channel_with_validators

from consortia.identity.certs import cert_der, load_certificate
from consortia.identity.wallet import load_node_identity
from consortia.network import (
    FRAME_BYTES_MAX,
    BadFrame,
    BadNetworkConfig,
    Frame,
    FrameDecoder,
    FrameTooLarge,
    NetworkLimits,
    channel_tls_roots,
    encode_frame,
    make_tls_contexts,
    split_address,
)
from consortia.network.framing import OutboundQueue, decode_frame, pack
from consortia.network.tls import TlsAuthorities


@given(
    bodies=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_split_of_the_stream_yields_the_same_frames(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pack(b) for b in bodies)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out += decoder.feed(stream[start:end])
    assert out == bodies
    assert decoder.buffered_bytes == 0


def test_frames_round_trip_through_the_envelope() -> None:
    wire = encode_frame("consensus", b"payload") + encode_frame("sync_request", b"")
    frames = [decode_frame(body) for body in FrameDecoder().feed(wire)]
    assert frames == [Frame("consensus", b"payload"), Frame("sync_request", b"")]


def test_announced_length_above_the_limit_raises_before_buffering() -> None:
    decoder = FrameDecoder(frame_bytes_max=100)
    assert decoder.feed(pack(b"x" * 100)) == [b"x" * 100]  # exactly the limit is fine
    with pytest.raises(FrameTooLarge):
        decoder.feed((101).to_bytes(4, "big"))  # only the header arrived
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed((FRAME_BYTES_MAX + 1).to_bytes(4, "big") + b"x")


def test_sending_above_the_limit_raises() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame("consensus", b"x" * 200, frame_bytes_max=100)
    with pytest.raises(FrameTooLarge):
        pack(b"x" * 101, 100)


@pytest.mark.parametrize("body", [b"", b"\xc1", b"\x92\x01\x02", b"\x92\xa1k\xa1s"])
def test_undecodable_frames_are_bad_frames(body: bytes) -> None:
    with pytest.raises(BadFrame):
        decode_frame(body)


def test_queue_drops_the_oldest_and_counts() -> None:
    q = OutboundQueue(frames_max=3, bytes_max=1000)
    assert [q.push(bytes([i])) for i in range(5)] == [0, 0, 0, 1, 1]
    assert q.dropped == 2 and len(q) == 3
    assert q.take() == b"\x02\x03\x04"
    assert q.take() == b"" and q.queued_bytes == 0


def test_queue_bounds_bytes_but_keeps_one_oversized_frame() -> None:
    q = OutboundQueue(frames_max=100, bytes_max=10)
    q.push(b"aaaa")
    q.push(b"bbbb")
    assert q.push(b"cccc") == 1
    assert q.queued_bytes == 8
    assert q.push(b"z" * 50) == 2  # alone, but still sent
    assert q.take() == b"z" * 50
    with pytest.raises(BadNetworkConfig):
        OutboundQueue(0, 10)


@pytest.mark.parametrize(
    "limits",
    [
        NetworkLimits(frame_bytes_max=0),
        NetworkLimits(frame_bytes_max=2**32),
        NetworkLimits(queue_frames_max=0),
        NetworkLimits(hello_timeout_ms=0),
        NetworkLimits(reconnect_min_ms=100, reconnect_max_ms=10),
    ],
)
def test_bad_limits_are_rejected(limits: NetworkLimits) -> None:
    with pytest.raises(BadNetworkConfig):
        limits.validate()


def test_addresses() -> None:
    assert split_address("node1.example.com:7051") == ("node1.example.com", 7051)
    assert split_address("[::1]:7051") == ("::1", 7051)
    for bad in ("nohost", ":7051", "host:", "host:0", "host:70000", "host:x1"):
        with pytest.raises(BadNetworkConfig):
            split_address(bad)


def test_tls_contexts_are_mutual_and_tls13_only(crypto: Path) -> None:
    config = channel_with_validators(crypto, [(org, f"peer0.{org}") for org in ORGS])
    me = load_node_identity(crypto, "org1")
    tls = make_tls_contexts(me.tls_cert_path, me.tls_key_path, channel_tls_roots(config))
    for ctx in (tls.server, tls.client):
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3
        assert len(ctx.get_ca_certs()) == len(ORGS)
    assert tls.cert_der == cert_der(load_certificate(me.tls_cert_path.read_bytes()))
    authorities = TlsAuthorities(config)
    assert authorities.org_of(tls.cert_der) == "org1"
    assert authorities.org_of(tls.cert_der) == "org1"  # cached


def test_unusable_tls_material_is_a_config_error(crypto: Path, tmp_path: Path) -> None:
    config = channel_with_validators(crypto, [("org1", "peer0.org1")])
    me, other = load_node_identity(crypto, "org1"), load_node_identity(crypto, "org2")
    roots = channel_tls_roots(config)
    with pytest.raises(BadNetworkConfig):
        make_tls_contexts(me.tls_cert_path, me.tls_key_path, [])
    with pytest.raises(BadNetworkConfig):
        make_tls_contexts(tmp_path / "missing.crt", me.tls_key_path, roots)
    with pytest.raises(BadNetworkConfig):  # key of another certificate
        make_tls_contexts(me.tls_cert_path, other.tls_key_path, roots)


def test_large_frame_in_small_pieces_then_more_frames() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    stream = pack(big) + pack(b"next") + pack(b"")
    decoder = FrameDecoder()
    out: list[bytes] = []
    for i in range(0, len(stream), 4096):
        out += decoder.feed(stream[i : i + 4096])
    assert out == [big, b"next", b""]
    assert decoder.buffered_bytes == 0
