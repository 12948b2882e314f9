"""Shared consortia for the identity tests: generated once per session, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortia.identity import MSP, channel_config_from_crypto, generate_consortium
from consortia.identity.certs import to_ms, utc_now
from consortia.types import ChannelConfig

ORGS = ["org1", "org2", "org3"]
SUITE_NAMES = ["ed25519", "secp256k1", "p256"]


@pytest.fixture(scope="session", params=SUITE_NAMES)
def suite(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def crypto_dir(tmp_path_factory: pytest.TempPathFactory, suite: str) -> Path:
    out = tmp_path_factory.mktemp(f"consortium-{suite}")
    generate_consortium(
        out, ORGS, suite=suite, clients=2, nodes=2, attributes={"client0@org1": {"dept": "fx", "level": "3"}}
    )
    return out


@pytest.fixture(scope="session")
def ed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("consortium-ed")
    generate_consortium(out, ORGS)
    return out


@pytest.fixture(scope="session")
def config(crypto_dir: Path, suite: str) -> ChannelConfig:
    return channel_config_from_crypto(crypto_dir, ORGS, "test-chain", "main", suite=suite)


@pytest.fixture(scope="session")
def ed_config(ed_dir: Path) -> ChannelConfig:
    return channel_config_from_crypto(ed_dir, ORGS, "test-chain", "main")


@pytest.fixture()
def msp(config: ChannelConfig) -> MSP:
    return MSP(config)


@pytest.fixture()
def now_ms() -> int:
    return to_ms(utc_now())


@pytest.fixture(scope="session")
def orgs() -> list[str]:
    return list(ORGS)
