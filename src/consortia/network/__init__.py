"""The network layer: mutual-TLS peer connections between validators, framing, block sync.

Imports types, crypto and identity only; the node wires it to consensus and the ledger
through callbacks.
"""

from consortia.network.connection import NetworkLimits
from consortia.network.errors import (
    BadFrame,
    BadNetworkConfig,
    FrameTooLarge,
    HelloRefused,
    NetworkError,
    SyncError,
)
from consortia.network.framing import (
    FRAME_BYTES_MAX,
    KIND_CONSENSUS,
    KIND_SYNC_REQUEST,
    KIND_SYNC_RESPONSE,
    Frame,
    FrameDecoder,
    encode_frame,
)
from consortia.network.peers import NodeSigner, PeerNetwork, PeerStats, split_address
from consortia.network.sync import BlockSyncer, SyncLimits, SyncRequest, SyncResponse, SyncServer
from consortia.network.tls import TlsContexts, channel_tls_roots, make_tls_contexts

__all__ = [
    "FRAME_BYTES_MAX",
    "KIND_CONSENSUS",
    "KIND_SYNC_REQUEST",
    "KIND_SYNC_RESPONSE",
    "BadFrame",
    "BadNetworkConfig",
    "BlockSyncer",
    "Frame",
    "FrameDecoder",
    "FrameTooLarge",
    "HelloRefused",
    "NetworkError",
    "NetworkLimits",
    "NodeSigner",
    "PeerNetwork",
    "PeerStats",
    "SyncError",
    "SyncLimits",
    "SyncRequest",
    "SyncResponse",
    "SyncServer",
    "TlsContexts",
    "channel_tls_roots",
    "encode_frame",
    "make_tls_contexts",
    "split_address",
]
