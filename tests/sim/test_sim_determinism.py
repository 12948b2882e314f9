"""One seed, one run: the same options and the same trace hash every time, in any process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.sim import SimOptions, run

HERE = Path(__file__).parent


@given(seed=st.integers(min_value=0, max_value=2**32), nodes=st.integers(min_value=1, max_value=9))
@settings(max_examples=50, deadline=None)
def test_options_are_a_function_of_the_seed(seed: int, nodes: int) -> None:
    crashed = (nodes - 1) // 2
    a = SimOptions.from_seed(seed, "toy", nodes, 0, crashed)
    b = SimOptions.from_seed(seed, "toy", nodes, 0, crashed)
    assert a == b
    assert all(0 <= p.start_ms < p.end_ms <= a.fault_phase_ms for p in a.partitions)
    assert {c.node for c in a.crashes} <= set(range(nodes))
    assert len({c.node for c in a.crashes}) == crashed


def test_same_seed_same_trace() -> None:
    first = run(11, "toy", 4, 0, 1)
    again = run(11, "toy", 4, 0, 1)
    assert first.trace_hash == again.trace_hash
    assert first == again  # every counter and latency too (wall time is not compared)
    assert run(12, "toy", 4, 0, 1).trace_hash != first.trace_hash


def test_trace_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "import json, sim_toy_engines; sim_toy_engines.register(); from consortia.sim import run; "
        "print(json.dumps([run(s, 'toy', 4, 0, 1).trace_hash for s in (3, 4)] "
        "+ [run(5, 'solo', 1, 0, 1).trace_hash]))"
    )
    env = dict(os.environ, PYTHONPATH=str(HERE), PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    there = json.loads(out.stdout)
    here = [run(s, "toy", 4, 0, 1).trace_hash for s in (3, 4)] + [run(5, "solo", 1, 0, 1).trace_hash]
    assert there == here
