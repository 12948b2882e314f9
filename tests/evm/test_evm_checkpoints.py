"""py-evm's journal checkpoints and ours never collide, whatever the process has run before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process py-evm's checkpoint counter is still small, so a database whose own
# checkpoints start at 1 hits one that the transient-storage journal already holds.
_SCRIPT = """
import json
from tests.evm.evm_kit import ALICE, PROBE_CODE, EvmChain
chain = EvmChain()
outcomes = [
    chain.executor.eth_call(
        chain.state, chain.config, chain.height, chain.now_ms, ALICE, None, PROBE_CODE, 0, gas
    )
    for gas in (30_000_000, 300_000, 100_000, 300_000)
]
print(json.dumps([[o.status, o.error] for o in outcomes]))
"""


def test_repeated_deploys_in_a_fresh_process_all_run() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    statuses = json.loads(done.stdout)
    assert [s for s, _ in statuses] == [0, 0, 1, 0]  # 100k gas is too little to deploy Probe
    assert statuses[2][1] == "out of gas"
