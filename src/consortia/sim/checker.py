"""Safety and liveness checkers, fed by the driver as blocks become durable.

- agreement: no two honest nodes make different blocks durable at one height, and no node
  ever makes durable a block other than the one it already had at that height (across
  restarts too);
- validity: every committed transaction was submitted by the simulated client and its
  signature verifies (the driver refuses anything else and reports it here);
- durability: every transaction acknowledged to the client by a node is still in that
  node's chain, at the same height, after each restart and at the end;
- liveness: once the network heals and crashed nodes restart, every honest node commits
  every submitted transaction within the stated bound.
"""

from __future__ import annotations

from dataclasses import dataclass

VIOLATION_KINDS = (
    "agreement",  # two honest nodes, two blocks, one height
    "undone",  # a node's durable block replaced (also across restarts)
    "validity",  # a committed block the execution rules refuse
    "certificate",  # an honest engine committed with a certificate short of the quorum
    "durability",  # an acknowledged transaction gone after a restart
    "liveness",  # commits did not resume within the bound after the faults ended
    "engine_error",  # the engine raised
    "bad_message",  # an honest engine sent something its own codec cannot decode
)


@dataclass(frozen=True)
class Violation:
    kind: str
    node: str
    time_ms: int
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} on {self.node} at {self.time_ms} ms: {self.detail}"


VIOLATIONS_PER_KIND_MAX = 10  # one broken invariant tends to repeat at every height


class Checker:
    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.suppressed = 0  # violations beyond the per-kind cap, counted but not kept
        self._per_kind: dict[str, int] = {}
        self._first: dict[int, tuple[bytes, str]] = {}  # height -> (hash, first honest node)
        self._acked: dict[str, dict[bytes, int]] = {}  # instance label -> tx id -> height
        self._durable: dict[str, dict[int, bytes]] = {}  # instance label -> height -> hash

    def report(self, kind: str, node: str, now: int, detail: str) -> None:
        n = self._per_kind.get(kind, 0) + 1
        self._per_kind[kind] = n
        if n > VIOLATIONS_PER_KIND_MAX:
            self.suppressed += 1
            return
        self.violations.append(Violation(kind, node, now, detail))

    def on_durable(
        self, node: str, honest: bool, height: int, block_hash: bytes, tx_ids: list[bytes], now: int
    ) -> None:
        """A block became durable on `node` (by commit or by block sync)."""
        mine = self._durable.setdefault(node, {})
        before = mine.get(height)
        if before is not None and before != block_hash:
            self.report(
                "undone", node, now, f"height {height} was {before.hex()[:12]}, now {block_hash.hex()[:12]}"
            )
        mine[height] = block_hash
        acked = self._acked.setdefault(node, {})
        for tx_id in tx_ids:
            acked[tx_id] = height
        if not honest:
            return
        first = self._first.get(height)
        if first is None:
            self._first[height] = (block_hash, node)
        elif first[0] != block_hash:
            self.report(
                "agreement",
                node,
                now,
                f"height {height}: {block_hash.hex()[:12]} here, {first[0].hex()[:12]} on {first[1]}",
            )

    def on_disk_lost(self, node: str) -> None:
        """The node's data directory is gone: what it acknowledged is no longer its promise."""
        self._acked.pop(node, None)
        self._durable.pop(node, None)

    def check_durable(self, node: str, chain_txs: dict[bytes, int], now: int) -> None:
        """After a restart and at the end: every acknowledged transaction is still there."""
        for tx_id, height in self._acked.get(node, {}).items():
            if chain_txs.get(tx_id) != height:
                self.report(
                    "durability", node, now, f"tx {tx_id.hex()[:12]} acknowledged at height {height} is gone"
                )
                return
