"""Native system contracts: token, config and lifecycle.

They are trusted Python, run with the same Context API as user contracts (config and
lifecycle additionally get a SystemContext for the `s/` records) and are deterministic.
"""

from __future__ import annotations

from consortia.execution.system.base import NativeContract
from consortia.execution.system.config import Config
from consortia.execution.system.lifecycle import Lifecycle
from consortia.execution.system.token import Token


def system_contracts() -> dict[str, NativeContract]:
    """A fresh instance of every system contract, by name."""
    return {c.name: c for c in (Config(), Lifecycle(), Token())}


__all__ = ["Config", "Lifecycle", "NativeContract", "Token", "system_contracts"]
