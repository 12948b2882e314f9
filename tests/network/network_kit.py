"""Helpers for network tests: consortia with validator sets, nodes on free loopback ports."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import uvloop

from consortia.identity import MSP, channel_config_from_crypto
from consortia.identity.wallet import NodeIdentity, load_node_identity
from consortia.network import NetworkLimits, PeerNetwork, channel_tls_roots, make_tls_contexts
from consortia.types import ChannelConfig, ConsensusConfig, Validator

ORGS = ["org1", "org2", "org3", "org4"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(main: Callable[[], Coroutine[Any, Any, T]], *, uv: bool = False, timeout_s: float = 20.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await main()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uv else None) as runner:
        return runner.run(bounded())


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.005)
    assert check(), what


def node_names(orgs: list[str] = ORGS, index: int = 0) -> list[str]:
    return [f"peer{index}.{org}" for org in orgs]


def channel_with_validators(
    crypto: Path, members: list[tuple[str, str]], orgs: list[str] = ORGS
) -> ChannelConfig:
    """A channel of `orgs` whose validators are `members` ((org, node name)), each on a
    free loopback port. Reads the CRLs as they are on disk now."""
    config = channel_config_from_crypto(crypto, orgs, "net-chain", "main", engine="pbft")
    validators = [
        Validator(name, org, load_node_identity(crypto, org, name).cert_der, f"localhost:{free_port()}")
        for org, name in sorted(members, key=lambda m: m[1])
    ]
    return msgspec.structs.replace(config, consensus=ConsensusConfig(engine="pbft", validators=validators))


@dataclass
class Inbox:
    messages: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, sender: str, payload: bytes) -> None:
        self.messages.append((sender, payload))

    def payloads(self, sender: str | None = None) -> list[bytes]:
        return [p for s, p in self.messages if sender is None or s == sender]


@dataclass
class NetNode:
    name: str
    org: str
    identity: NodeIdentity
    network: PeerNetwork
    inbox: Inbox


def make_node(
    crypto: Path,
    config: ChannelConfig,
    name: str,
    limits: NetworkLimits | None = None,
    identity: NodeIdentity | None = None,
) -> NetNode:
    validator = next(v for v in config.consensus.validators if v.name == name)
    ident = identity or load_node_identity(crypto, validator.org, name)
    tls = make_tls_contexts(ident.tls_cert_path, ident.tls_key_path, channel_tls_roots(config))
    port = int(validator.address.rsplit(":", 1)[1])
    inbox = Inbox()
    limits = limits or NetworkLimits(reconnect_min_ms=20, reconnect_max_ms=300, hello_timeout_ms=2000)
    net = PeerNetwork(
        name, config, tls, MSP(config), ident, inbox, host="127.0.0.1", port=port, limits=limits
    )
    return NetNode(name, validator.org, ident, net, inbox)


async def start_all(nodes: list[NetNode]) -> None:
    for node in nodes:
        await node.network.start()


async def close_all(nodes: list[NetNode]) -> None:
    await asyncio.gather(*(node.network.close() for node in nodes))


async def with_nodes(nodes: list[NetNode], body: Callable[[], Awaitable[None]]) -> None:
    await start_all(nodes)
    try:
        await body()
    finally:
        await close_all(nodes)
