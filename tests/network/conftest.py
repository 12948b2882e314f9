"""Consortia for the network tests, generated once per session (read-only afterwards)."""

from __future__ import annotations

from pathlib import Path

import pytest
from network_kit import ORGS

from consortia.identity import generate_consortium


@pytest.fixture(scope="session")
def crypto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net-consortium")
    generate_consortium(out, ORGS, nodes=2, clients=0)
    return out


@pytest.fixture(scope="session")
def foreign_crypto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another consortium with the same organisation names but its own CAs."""
    out = tmp_path_factory.mktemp("foreign-consortium")
    generate_consortium(out, ORGS, nodes=1, clients=0)
    return out
