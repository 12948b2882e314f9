"""Byzantine behaviour for any engine, by mutating its outgoing messages generically.

A byzantine node runs the real engine; only what leaves it is changed. Messages are msgspec
structs, so the mutations walk their fields without knowing the engine: counters named like
`view`, `round`, `term`, `seq` or `height` are pushed ahead; embedded blocks get a different
timestamp (a different, still well-formed block with a new hash, which is substituted
wherever the old hash appears); signatures get a flipped byte; commit certificates keep
their signers but get fresh random signatures. Replay, flood and silence act on whole
messages. Twins (two instances of one identity) and amnesia (restart with an empty data
directory) live in the runner, since they are about instances, not messages.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec

from consortia.sim.options import ByzantinePlan
from consortia.types import Block, BlockSignature, CommitCertificate

COUNTER_FIELDS = frozenset(
    {"view", "round", "term", "seq", "sequence", "height", "epoch", "index", "new_view", "last_index"}
)
SIGNATURE_BYTES = 64

Mutation = Callable[[Any, str], Any]  # (value, field name) -> replacement, or the value itself


def walk(obj: Any, fn: Mutation, name: str = "") -> Any:
    """Apply `fn` bottom-up to every field of a struct tree; unchanged parts stay shared."""
    if isinstance(obj, msgspec.Struct):
        changes: dict[str, Any] = {}
        for field in obj.__struct_fields__:
            old = getattr(obj, field)
            new = walk(old, fn, field)
            if new is not old:
                changes[field] = new
        if changes:
            obj = msgspec.structs.replace(obj, **changes)
        return fn(obj, name)
    if isinstance(obj, list | tuple):
        items = [walk(x, fn, name) for x in obj]
        if any(a is not b for a, b in zip(items, obj, strict=True)):
            return type(obj)(items)
        return obj
    return fn(obj, name)


def replace_bytes(obj: Any, old: bytes, new: bytes) -> Any:
    """Every bytes field equal to `old` becomes `new` (a block hash that was swapped)."""
    return walk(obj, lambda v, _n: new if isinstance(v, bytes) and v == old else v)


class Mutator:
    """The outgoing side of one byzantine node."""

    def __init__(self, plan: ByzantinePlan, rng: random.Random):
        self.plan = plan
        self.rng = rng
        self.counts: dict[str, int] = {}

    def has(self, behaviour: str) -> bool:
        return behaviour in self.plan.behaviours

    def _acts(self) -> bool:
        return self.rng.randrange(1000) < self.plan.act_permille

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def outgoing(self, to: str | None, message: Any, others: list[str]) -> list[tuple[str, Any]]:
        """What actually leaves for one Send (`to`) or Broadcast (`to` None to `others`)."""
        if self.has("silence"):
            self._count("silenced")
            return []
        targets = [to] if to is not None else others
        out: list[tuple[str, Any]] = []
        if self.has("equivocate") and len(targets) > 1 and self._acts():
            # Half the targets hear the message, the other half a conflicting version.
            forked = self.equivocate(message)
            if forked is not message:
                self._count("equivocated")
                cut = len(targets) // 2
                order = self.rng.sample(targets, len(targets))
                out = [(t, message) for t in order[:cut]] + [(t, forked) for t in order[cut:]]
        if not out:
            out = [(t, message) for t in targets]
        out = [(t, self._mutate(m)) for t, m in out]
        if self.has("flood"):
            self._count("flooded")
            out = [pair for pair in out for _ in range(self.plan.flood_copies)]
        return out

    def _mutate(self, message: Any) -> Any:
        if self.has("equivocate") and self._acts():
            forked = self.equivocate(message)
            if forked is not message:
                self._count("equivocated")
                message = forked
        if self.has("future_view") and self._acts():
            jump = self.rng.choice((1, 2, 5, 1000, 2**31))
            bumped = walk(message, lambda v, n: _bump(v, n, jump))
            if bumped is not message:
                self._count("future_view")
                message = bumped
        if self.has("forge_cert") and self._acts():
            forged = walk(message, self.forge)
            if forged is not message:
                self._count("forged_cert")
                message = forged
        if self.has("bad_sig") and self._acts():
            broken = walk(message, self._flip_signature)
            if broken is not message:
                self._count("bad_sig")
                message = broken
        return message

    def equivocate(self, message: Any) -> Any:
        """A conflicting version: embedded blocks re-stamped (new hashes substituted), or
        when the message carries no block, every 32-byte digest replaced."""
        swaps: list[tuple[bytes, bytes]] = []

        def restamp(v: Any, _n: str) -> Any:
            if isinstance(v, Block):
                h = v.header
                header = msgspec.structs.replace(h, timestamp_ms=h.timestamp_ms + 1)
                swaps.append((h.hash, header.hash))
                return Block(header, v.txs, v.certificate)
            return v

        out = walk(message, restamp)
        for old, new in swaps:
            out = replace_bytes(out, old, new)
        if swaps:
            return out
        digest = self.rng.randbytes(32)
        return walk(message, lambda v, n: digest if isinstance(v, bytes) and len(v) == 32 else v)

    def forge(self, v: Any, _n: str) -> Any:
        if isinstance(v, CommitCertificate) and v.signatures:
            sigs = [BlockSignature(s.signer, self.rng.randbytes(SIGNATURE_BYTES)) for s in v.signatures]
            return CommitCertificate(v.height, v.block_hash, sigs)
        return v

    def _flip_signature(self, v: Any, _n: str) -> Any:
        # Every signature suite we ship makes 64-byte signatures; hashes are 32 bytes.
        if isinstance(v, bytes) and len(v) == SIGNATURE_BYTES:
            i = self.rng.randrange(len(v))
            return v[:i] + bytes([v[i] ^ 0x01]) + v[i + 1 :]
        return v


def _bump(v: Any, name: str, jump: int) -> Any:
    if name in COUNTER_FIELDS and type(v) is int:
        return v + jump
    return v
