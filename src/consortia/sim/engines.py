"""The engines the simulator can drive, with the fault model each one claims.

An engine module is imported only when a run asks for it, so the simulator works while an
engine is still being written; `available()` says which ones import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

from consortia.consensus.interface import Engine, EngineSetup
from consortia.sim.errors import SimError

FaultModel = Literal["cft", "bft"]


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine and what it promises.

    `fault_model` "cft" tolerates `f = (n - 1) // 2` crashed nodes and no byzantine ones;
    "bft" tolerates `f = (n - 1) // 3` byzantine nodes. `quorum(n)` is the commit quorum
    the simulator hands to the engine and checks on every certificate.
    """

    name: str
    fault_model: FaultModel
    module: str
    cls: str
    single_node: bool = False
    fixed_quorum: int = 0  # a quorum that does not grow with the node count (0: derived)

    def tolerated(self, nodes: int) -> int:
        if self.single_node:
            return 0
        return (nodes - 1) // 2 if self.fault_model == "cft" else (nodes - 1) // 3

    def quorum(self, nodes: int) -> int:
        if self.fixed_quorum:
            return self.fixed_quorum
        if self.single_node:
            return 1
        if self.fault_model == "cft":
            return nodes // 2 + 1
        # Two quorums of this size intersect in at least f + 1 nodes, one of them honest.
        return (nodes + self.tolerated(nodes)) // 2 + 1

    def load(self) -> LoadedEngine:
        """Import the engine module.

        Raises SimError when the module or class does not exist (yet).
        """
        try:
            module = importlib.import_module(self.module)
            cls = getattr(module, self.cls)
        except (ImportError, AttributeError) as exc:
            raise SimError(f"engine {self.name!r} is not available: {exc}") from exc
        types = tuple(getattr(module, "MESSAGE_TYPES", ()))
        factory: Callable[[EngineSetup], Engine] = cls.from_setup
        return LoadedEngine(self, factory, types)


@dataclass(frozen=True)
class LoadedEngine:
    spec: EngineSpec
    factory: Callable[[EngineSetup], Engine]
    message_types: tuple[type, ...]

    @property
    def message_union(self) -> Any:
        """The type to decode any of the engine's messages with (None when it sends none)."""
        if not self.message_types:
            return None
        return Union[self.message_types]  # noqa: UP007 - a runtime tuple needs the subscript form


# Tests register toy engines here too (a broken one proves the checkers can fail).
ENGINES: dict[str, EngineSpec] = {
    "solo": EngineSpec("solo", "cft", "consortia.consensus.solo", "SoloEngine", single_node=True),
    "raft": EngineSpec("raft", "cft", "consortia.consensus.raft", "RaftEngine"),
    "pbft": EngineSpec("pbft", "bft", "consortia.consensus.pbft", "PbftEngine"),
}


def engine_spec(name: str) -> EngineSpec:
    """Raises SimError for an engine the simulator does not know."""
    try:
        return ENGINES[name]
    except KeyError:
        raise SimError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None


def available() -> list[str]:
    """Names of the engines whose modules import right now."""
    out: list[str] = []
    for name, spec in ENGINES.items():
        try:
            spec.load()
        except SimError:
            continue
        out.append(name)
    return out
