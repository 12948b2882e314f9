"""Node configuration: one TOML file, validated once at start-up."""

from __future__ import annotations

from pathlib import Path

import msgspec


class ConfigError(Exception):
    """The node's configuration file is missing, malformed or inconsistent."""

    code = "bad_config"


class NodeSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    org: str
    data_dir: str = "data"
    cert: str = "signcert.pem"
    key: str = "signkey.pem"
    genesis: str = "genesis.block"
    tick_ms: int = 5


class ApiSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 7050
    body_bytes_max: int = 4 * 1024 * 1024
    rate_per_s: int = 50_000  # per client address, token bucket refill
    rate_burst: int = 100_000
    wait_timeout_ms_max: int = 60_000


class P2pSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The peer endpoint (mutual TLS with the organisation's TLS certificate)."""

    host: str = "0.0.0.0"
    port: int = 7051
    tls_cert: str = "tls.crt"
    tls_key: str = "tls.key"


class MempoolSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    txs_max: int = 200_000
    bytes_max: int = 256 * 1024 * 1024
    per_sender_txs_max: int = 100_000
    eth_queued_per_sender_max: int = 64  # Ethereum txs waiting for a nonce gap, per sender
    eth_nonce_gap_max: int = 256  # how far beyond the sender's next nonce one may wait


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    node: NodeSection
    api: ApiSection = ApiSection()
    mempool: MempoolSection = MempoolSection()
    p2p: P2pSection | None = None  # required by every engine but solo
    base_dir: str = ""  # filled in by load_config: paths are relative to the file

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def validate(self) -> None:
        if not self.node.name or not self.node.org:
            raise ConfigError("node.name and node.org must be set")
        if not 1 <= self.node.tick_ms <= 1000:
            raise ConfigError("node.tick_ms must be within 1..1000")
        if not 0 <= self.api.port <= 65535:
            raise ConfigError("api.port must be within 0..65535")
        if self.p2p is not None and not 0 <= self.p2p.port <= 65535:
            raise ConfigError("p2p.port must be within 0..65535")
        for section, names in (
            (self.api, ("body_bytes_max", "rate_per_s", "rate_burst", "wait_timeout_ms_max")),
            (
                self.mempool,
                (
                    "txs_max",
                    "bytes_max",
                    "per_sender_txs_max",
                    "eth_queued_per_sender_max",
                    "eth_nonce_gap_max",
                ),
            ),
        ):
            for name in names:
                if getattr(section, name) <= 0:
                    raise ConfigError(f"{name} must be positive")


def load_config(path: Path) -> NodeConfig:
    """Read and validate a node TOML file. Raises ConfigError with the reason."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        cfg = msgspec.toml.decode(raw, type=NodeConfig)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    cfg = msgspec.structs.replace(cfg, base_dir=str(path.parent.resolve()))
    cfg.validate()
    return cfg
