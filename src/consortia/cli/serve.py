"""Serve a node from its TOML file: build it, start peering and the engine, serve the API
until SIGINT/SIGTERM, then close the ledger cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from consortia.api.app import create_app
from consortia.node.config import ConfigError, NodeConfig
from consortia.node.main import build_node

log = logging.getLogger("consortia.node")


def uvicorn_config(app: ASGIApp, host: str, port: int, ws_max_size: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        http="httptools",  # C parser: h11 parses and frames in pure Python
        timeout_graceful_shutdown=10,
        ws_max_size=ws_max_size,
        # Clients reach the node directly: the rate limit keys on the connecting address,
        # which no X-Forwarded-For header may change, and no proxy-header layer runs per
        # request. Nor does a Server header (it would only name the server software).
        proxy_headers=False,
        server_header=False,
    )


async def serve(cfg: NodeConfig) -> None:
    node = build_node(cfg)
    app = create_app(
        node,
        body_bytes_max=cfg.api.body_bytes_max,
        rate_per_s=cfg.api.rate_per_s,
        rate_burst=cfg.api.rate_burst,
        wait_timeout_ms_max=cfg.api.wait_timeout_ms_max,
    )
    server = uvicorn.Server(uvicorn_config(app, cfg.api.host, cfg.api.port, cfg.api.body_bytes_max))
    # uvicorn catches SIGINT/SIGTERM while serving and re-raises them once it has stopped;
    # a no-op handler lets that re-raise return here, so the ledger is closed cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    peering = None
    if node.config.consensus.engine != "solo":
        if cfg.p2p is None:
            raise ConfigError(
                f"engine {node.config.consensus.engine} needs a [p2p] section in the node config"
            )
        from consortia.node.peering import Peering

        peering = Peering(
            node, cfg.p2p.host, cfg.p2p.port, cfg.path(cfg.p2p.tls_cert), cfg.path(cfg.p2p.tls_key)
        )
        await peering.start()
    node.start_verifier()
    await node.start()
    ready = cfg.path(cfg.node.data_dir) / "node.ready"
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        # What start-up built (modules, the app, caches, the ledger's handles) lives as long
        # as the process: keep it out of every later collection's scan, which otherwise
        # walks it again each time the block path's short-lived objects trigger one.
        gc.freeze()
        ready.write_text(f"http://{cfg.api.host}:{cfg.api.port} {os.getpid()}\n")
        log.info(
            "node %s serving on %s:%d at height %d", node.name, cfg.api.host, cfg.api.port, node.ledger.height
        )
    try:
        await serving  # returns on SIGINT/SIGTERM (uvicorn installs the handlers)
    finally:
        ready.unlink(missing_ok=True)
        await node.stop()
        if peering is not None:
            await peering.close()


def run(config_path: Path) -> None:
    from consortia.node.config import load_config

    cfg = load_config(config_path)
    try:
        import uvloop

        uvloop.run(serve(cfg))
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        asyncio.run(serve(cfg))
