"""Engines by name. Each engine module is imported only when a channel uses it."""

from __future__ import annotations

import importlib

from consortia.consensus.interface import Engine, EngineSetup

ENGINES = {
    "solo": ("consortia.consensus.solo", "SoloEngine"),
    "raft": ("consortia.consensus.raft", "RaftEngine"),
    "pbft": ("consortia.consensus.pbft", "PbftEngine"),
}


class UnknownEngine(ValueError):
    code = "unknown_engine"


def engine_class(name: str) -> type:
    try:
        module, cls = ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise UnknownEngine(f"unknown consensus engine {name!r}; known: {known}") from None
    found: type = getattr(importlib.import_module(module), cls)
    return found


def make_engine(name: str, setup: EngineSetup) -> Engine:
    engine: Engine = engine_class(name).from_setup(setup)  # type: ignore[attr-defined]
    return engine


def message_types(name: str) -> tuple[type, ...]:
    """The msgspec Struct types an engine sends to its peers (empty for solo)."""
    module = importlib.import_module(ENGINES[name][0]) if name in ENGINES else None
    types: tuple[type, ...] = getattr(module, "MESSAGE_TYPES", ())
    return types
