"""Shared fixtures: the toy engines registered under their names for the whole session."""

from __future__ import annotations

import pytest
import sim_toy_engines


@pytest.fixture(scope="session", autouse=True)
def toy_engines() -> None:
    sim_toy_engines.register()
