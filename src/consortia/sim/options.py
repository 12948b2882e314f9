"""Every knob of one simulated run, derived from a single seed.

`SimOptions.from_seed` draws the whole fault schedule up front from `random.Random(seed)`:
network latencies, loss, duplication, reordering, partitions (symmetric, asymmetric, one
node isolated, and splits that heal link by link), slow nodes, clock offsets, crash and
restart times (some crashing right after a durable write, losing the actions after it),
byzantine behaviours and the client load. The run itself draws per-message decisions from a
second generator seeded from the same seed, so one integer replays a run exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from consortia.sim.engines import EngineSpec, engine_spec
from consortia.sim.errors import SimError
from consortia.types import BlockLimits

NODES_MAX = 64
TICK_MS = 10
LIVENESS_BOUND_MS = 30_000
# Beyond the fault model: the shortest fault phase, and how long safety is still watched after.
BEYOND_MODEL_FAULT_MS = 8_000
BEYOND_MODEL_TAIL_MS = 2_000

BEHAVIOURS = (
    "equivocate",  # different versions of one broadcast to different peers
    "future_view",  # view / round / term / sequence numbers pushed ahead
    "replay",  # old messages sent again, later
    "forge_cert",  # commit certificates with well-formed but wrong signatures
    "bad_sig",  # signatures with a flipped byte
    "silence",  # sends nothing
    "flood",  # every message many times over
    "twins",  # two engine instances share the identity, each on part of the network
    "amnesia",  # restarts with an empty data directory and signs again what it forgot
)
PARTITION_KINDS = ("split", "asymmetric", "isolate", "link_heal")


@dataclass(frozen=True)
class LinkCut:
    """Messages from `src` to `dst` (node indices) are dropped in [start_ms, end_ms)."""

    src: int
    dst: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Partition:
    kind: str  # one of PARTITION_KINDS
    start_ms: int
    end_ms: int  # when the last of its links heals
    cuts: tuple[LinkCut, ...]


@dataclass(frozen=True)
class CrashPlan:
    """Node `node` crashes at `at_ms` and restarts `down_ms` after it actually went down.

    `lost_write`: the crash waits for the node's next durable write (Persist or a block
    commit) and strikes right after it, so the actions after the write never happen.
    `empty_disk`: the node restarts with an empty data directory (outside a crash-fault
    model: a node that forgets its votes can vote twice).
    """

    node: int
    at_ms: int
    down_ms: int
    lost_write: bool
    empty_disk: bool


@dataclass(frozen=True)
class ByzantinePlan:
    node: int
    behaviours: tuple[str, ...]
    act_permille: int  # how often a mutating behaviour touches an outgoing message
    flood_copies: int
    replay_every_ms: int


@dataclass(frozen=True)
class TwinsSplit:
    """While active, twin instance k only reaches side k; honest nodes sit on one side."""

    start_ms: int
    end_ms: int
    sides: tuple[int, ...]  # per node index: 0 or 1 (ignored for twins)


@dataclass(frozen=True)
class SimOptions:
    seed: int
    engine: str
    nodes: int
    byzantine: int
    crashed: int
    amnesia: bool
    fault_phase_ms: int
    liveness_bound_ms: int
    tick_ms: int
    limits: BlockLimits
    # network
    latency_ms: tuple[int, ...]  # per directed link, index src * nodes + dst
    jitter_ms: int
    loss_permille: int
    dup_permille: int
    reorder: bool
    partitions: tuple[Partition, ...]
    slow_nodes: tuple[int, ...]
    slow_extra_ms: int
    slow_tick_ms: int
    clock_offset_ms: tuple[int, ...]
    # nodes
    crashes: tuple[CrashPlan, ...]
    byzantine_plans: tuple[ByzantinePlan, ...]
    twins_split: TwinsSplit | None
    # execution and disk
    exec_ms: int
    disk_ms: int
    sync_every_ms: int
    # client
    clients: int
    submit_ms: tuple[int, ...]  # when each transaction is submitted
    probe_txs: int  # submitted when the network heals, to show commits resume
    # Building or executing a block takes exec_ms plus this per transaction (a node that
    # spends seconds on a large block under load is a timing the engines must live with).
    exec_us_per_tx: int = 250

    @property
    def spec(self) -> EngineSpec:
        return engine_spec(self.engine)

    @property
    def beyond_model(self) -> bool:
        """More byzantine nodes than the engine tolerates: only safety violations are expected."""
        return self.byzantine > self.spec.tolerated(self.nodes)

    @property
    def byzantine_nodes(self) -> tuple[int, ...]:
        return tuple(p.node for p in self.byzantine_plans)

    def replay_command(self) -> str:
        cmd = f"consortia sim --engine {self.engine} --nodes {self.nodes}"
        if self.byzantine:
            cmd += f" --byzantine {self.byzantine}"
        if self.crashed:
            cmd += f" --crashed {self.crashed}"
        if self.amnesia:
            cmd += " --amnesia"
        return cmd + f" --seed {self.seed}"

    @classmethod
    def from_seed(
        cls,
        seed: int,
        engine: str,
        nodes: int,
        byzantine: int = 0,
        crashed: int = 0,
        *,
        amnesia: bool = False,
    ) -> SimOptions:
        """Derive every option of a run from `seed`.

        Raises SimError for an unknown engine or impossible node counts (byzantine nodes on
        a crash-fault engine, more faulty nodes than nodes, more than one Solo node).
        """
        spec = engine_spec(engine)
        _check_counts(spec, nodes, byzantine, crashed, seed)
        rng = random.Random(seed)
        beyond = byzantine > spec.tolerated(nodes)
        fault_ms = rng.randrange(1_500, 3_001, 100)
        if beyond:
            # Long enough for a few view changes on the side of a split without a primary.
            fault_ms = rng.randrange(BEYOND_MODEL_FAULT_MS, 2 * BEYOND_MODEL_FAULT_MS + 1, 100)
        limits = BlockLimits(
            txs_max=rng.choice((1, 2, 3, 4, 6, 8)), bytes_max=64 * 1024, wait_ms=rng.choice((0, 5, 20, 50))
        )

        base = [rng.randint(1, 15) for _ in range(nodes * nodes)]
        jitter = rng.choice((0, 2, 10, 30))
        loss = 0 if rng.random() < 0.3 else rng.choice((5, 20, 50, 100))
        dup = 0 if rng.random() < 0.5 else rng.choice((5, 30))
        reorder = rng.random() < 0.5
        # Beyond the fault model the twins' split is the partition that matters; more would
        # only stall both sides.
        partitions = _partitions(rng, nodes, fault_ms) if nodes > 1 and not beyond else ()
        slow = (rng.randrange(nodes),) if nodes > 1 and rng.random() < 0.3 else ()
        offsets = tuple(rng.randint(0, 1_000) for _ in range(nodes))

        byz_nodes = rng.sample(range(nodes), byzantine)
        honest = [i for i in range(nodes) if i not in byz_nodes]
        crash_nodes = rng.sample(honest, crashed)
        crashes = tuple(plan for node in crash_nodes for plan in _crash_plans(rng, node, fault_ms, amnesia))
        plans = tuple(_byzantine_plan(rng, node, beyond) for node in sorted(byz_nodes))
        # Amnesia is a crash too: give it a schedule.
        crashes += tuple(
            CrashPlan(p.node, rng.randrange(500, fault_ms - 500), rng.randint(100, 800), False, True)
            for p in plans
            if "amnesia" in p.behaviours
        )
        split = _twins_split(rng, nodes, plans, fault_ms, beyond)

        interval = rng.randint(30, 150)
        submit = tuple(range(rng.randint(0, 200), fault_ms, interval))
        return cls(
            seed=seed,
            engine=engine,
            nodes=nodes,
            byzantine=byzantine,
            crashed=crashed,
            amnesia=amnesia,
            fault_phase_ms=fault_ms,
            liveness_bound_ms=LIVENESS_BOUND_MS,
            tick_ms=rng.choice((TICK_MS, TICK_MS, 2 * TICK_MS)),
            limits=limits,
            latency_ms=tuple(base),
            jitter_ms=jitter,
            loss_permille=loss,
            dup_permille=dup,
            reorder=reorder,
            partitions=partitions,
            slow_nodes=slow,
            slow_extra_ms=rng.randint(20, 80),
            slow_tick_ms=rng.choice((20, 30, 50)),
            clock_offset_ms=offsets,
            crashes=crashes,
            byzantine_plans=plans,
            twins_split=split,
            exec_ms=rng.randint(1, 5),
            disk_ms=rng.randint(0, 3),
            sync_every_ms=rng.choice((200, 300, 500)),
            clients=rng.randint(1, 3),
            submit_ms=submit,
            probe_txs=3,
        )


def _check_counts(spec: EngineSpec, nodes: int, byzantine: int, crashed: int, seed: int) -> None:
    if not 1 <= nodes <= NODES_MAX:
        raise SimError(f"--nodes must be 1..{NODES_MAX}")
    if byzantine < 0 or crashed < 0:
        raise SimError("--byzantine and --crashed must be >= 0")
    if byzantine + crashed > nodes:
        raise SimError("more faulty nodes than nodes")
    if spec.single_node and nodes != 1:
        raise SimError(f"{spec.name} runs on exactly one node")
    if spec.fault_model == "cft" and byzantine:
        raise SimError(f"{spec.name} is crash-fault tolerant only: --byzantine must be 0")
    if seed < 0:
        raise SimError("seeds are non-negative integers")


def _partitions(rng: random.Random, nodes: int, fault_ms: int) -> tuple[Partition, ...]:
    out: list[Partition] = []
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        kind = rng.choice(PARTITION_KINDS)
        start = rng.randrange(0, fault_ms - 200)
        end = min(fault_ms, start + rng.randint(200, 2_500))
        if kind == "isolate":
            side = [rng.randrange(nodes)]
        else:
            side = rng.sample(range(nodes), rng.randint(1, nodes - 1))
        rest = [i for i in range(nodes) if i not in side]
        pairs = [(a, b) for a in sorted(side) for b in rest]
        # Asymmetric: side -> rest only, so the rest still hears the side.
        links = pairs if kind == "asymmetric" else pairs + [(b, a) for a, b in pairs]
        if kind == "link_heal":
            # Links come back one at a time, in a random order.
            first = max(start + 1, end - 1_000)
            cuts = tuple(LinkCut(a, b, start, rng.randint(first, end)) for a, b in links)
        else:
            cuts = tuple(LinkCut(a, b, start, end) for a, b in links)
        out.append(Partition(kind, start, max(c.end_ms for c in cuts), cuts))
    return tuple(out)


def _crash_plans(rng: random.Random, node: int, fault_ms: int, amnesia: bool) -> list[CrashPlan]:
    plans: list[CrashPlan] = []
    t = rng.randint(100, fault_ms // 2)
    for _ in range(rng.randint(1, 3)):
        if t >= fault_ms - 100:
            break
        down = rng.randint(100, 2_000)
        lost = rng.random() < 0.4
        empty = amnesia and rng.random() < 0.4
        plans.append(CrashPlan(node, t, down, lost, empty))
        t += down + rng.randint(200, 1_500)
    return plans


def _byzantine_plan(rng: random.Random, node: int, beyond: bool) -> ByzantinePlan:
    if beyond:
        # Beyond the fault model, Twins is the strategy that breaks a BFT engine: each twin
        # completes quorums with one half of the honest nodes, with properly signed votes.
        behaviours: tuple[str, ...] = ("twins",)
    else:
        first = rng.choice(BEHAVIOURS)
        if first in ("silence", "twins", "amnesia"):
            behaviours = (first,)
        else:
            mutating = [b for b in BEHAVIOURS if b not in ("silence", "twins", "amnesia")]
            extra = rng.sample(mutating, rng.randint(0, 2))
            behaviours = tuple(sorted({first, *extra}, key=BEHAVIOURS.index))
    return ByzantinePlan(
        node=node,
        behaviours=behaviours,
        act_permille=rng.choice((200, 500, 900)),
        flood_copies=rng.randint(3, 8),
        replay_every_ms=rng.choice((20, 50, 200)),
    )


def _twins_split(
    rng: random.Random, nodes: int, plans: tuple[ByzantinePlan, ...], fault_ms: int, beyond: bool
) -> TwinsSplit | None:
    if not any("twins" in p.behaviours for p in plans):
        return None
    honest = [i for i in range(nodes) if i not in {p.node for p in plans}]
    shuffled = rng.sample(honest, len(honest))
    sides = [0] * nodes
    for k, node in enumerate(shuffled):
        sides[node] = k % 2
    if beyond:
        return TwinsSplit(0, fault_ms, tuple(sides))
    if rng.random() < 0.5:
        return None  # twins on one network: each honest node hears both
    start = rng.randrange(0, fault_ms // 2)
    return TwinsSplit(start, min(fault_ms, start + rng.randint(500, 3_000)), tuple(sides))
