"""Build a node from its TOML configuration: ledger, engine store, signer, pool limits.

Serving it (API, peering, the server process) is `consortia.cli.serve`: the API sits above
this layer."""

from __future__ import annotations

from consortia.consensus import BlockSigner
from consortia.identity.wallet import private_key_from_pem
from consortia.mempool import PoolLimits
from consortia.node.config import NodeConfig
from consortia.node.engine_store import EngineStore
from consortia.node.genesis import read_genesis
from consortia.node.runtime import Node, open_ledger_with_genesis


def build_node(cfg: NodeConfig) -> Node:
    genesis = read_genesis(cfg.path(cfg.node.genesis))
    cert_pem = cfg.path(cfg.node.cert).read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert_der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    key = private_key_from_pem(cfg.path(cfg.node.key).read_bytes())
    data_dir = cfg.path(cfg.node.data_dir)
    ledger = open_ledger_with_genesis(data_dir, genesis)
    pool = cfg.mempool
    limits = PoolLimits(
        pool.txs_max,
        pool.bytes_max,
        pool.per_sender_txs_max,
        pool.eth_queued_per_sender_max,
        pool.eth_nonce_gap_max,
    )
    store = EngineStore(data_dir / ledger.channel / "consensus")
    return Node(
        cfg.node.name,
        ledger,
        BlockSigner(cert_der, key),
        limits,
        tick_ms=cfg.node.tick_ms,
        engine_store=store,
    )
