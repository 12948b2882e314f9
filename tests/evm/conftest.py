"""Fixtures for EVM tests that run a real node: a generated consortium."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortia.identity.cryptogen import generate_consortium
from tests.node.conftest import ORGS


@pytest.fixture(scope="session")
def evm_crypto_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evm-consortium") / "crypto"
    generate_consortium(out, ORGS)
    return out
