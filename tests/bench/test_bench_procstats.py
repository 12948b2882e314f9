"""A node's CPU, memory and profile include its worker processes (signature verification)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from consortia.bench import procstats
from consortia.bench.profile import top_costs

BURN = (
    "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
    "print('done', flush=True)\ntime.sleep(30)"
)


def test_sample_counts_live_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
        own = procstats._sample_one(os.getpid())
        tree = procstats.sample(os.getpid())
        burnt = procstats._sample_one(child.pid)
        assert own is not None and tree is not None and burnt is not None
        assert burnt.cpu_s >= 0.35
        assert tree.cpu_s >= own.cpu_s + burnt.cpu_s - 0.05
        assert tree.rss_bytes >= own.rss_bytes + burnt.rss_bytes - 1_000_000
        assert child.pid in procstats._descendants(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_sample_of_a_gone_process_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    time.sleep(0.05)
    assert procstats.sample(child.pid) is None


def test_profile_ranks_skip_process_and_thread_frames(tmp_path: Path) -> None:
    collapsed = tmp_path / "node.collapsed"
    collapsed.write_text(
        'process 10:"python -m consortia";thread 0x1;run (consortia/cli/serve.py:5);'
        "execute (consortia/node/blocks.py:9) 3\n"
        'process 10:"python -m consortia";process 11:"python -c serve()";'
        "serve (consortia/crypto/batch.py:300);ed25519_verify (consortia/crypto/suites.py:40) 1\n"
    )
    costs = top_costs(collapsed)
    names = [name for name, _ in costs["inclusive"]] + [name for name, _ in costs["self"]]
    assert not any(name.startswith(("process", "thread")) for name in names)
    expected = {"execute (node/blocks.py)": 75.0, "ed25519_verify (crypto/suites.py)": 25.0}
    assert dict(costs["self"]) == expected


STAT = "cpu  {} 0 {} {} {} 0 {} {} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"


def test_host_cpu_shares_split_busy_idle_and_steal() -> None:
    # user, system, idle, iowait, softirq, steal
    before = procstats.host_cpu(STAT.format(100, 50, 1000, 10, 5, 20))
    after = procstats.host_cpu(STAT.format(400, 100, 1300, 30, 25, 220))
    assert before == procstats.HostCpu(busy=155, idle=1010, steal=20)
    # busy 370, idle 320, steal 200 of 890 ticks
    assert procstats.host_cpu_shares(before, after) == {"busy_pct": 41.6, "idle_pct": 36.0, "steal_pct": 22.5}


def test_host_cpu_readings_that_cannot_be_compared() -> None:
    assert procstats.host_cpu("intr 1 2 3\n") is None
    assert procstats.host_cpu("cpu  1 x 3 4\n") is None
    old_kernel = procstats.host_cpu("cpu  1 2 3 4\n")  # no iowait, irq or steal columns
    assert old_kernel == procstats.HostCpu(busy=6, idle=4, steal=0)
    same = procstats.host_cpu(STAT.format(1, 1, 1, 1, 1, 1))
    assert procstats.host_cpu_shares(same, same) == {}
    assert procstats.host_cpu_shares(None, same) == {}


def test_host_cpu_reads_this_machine() -> None:
    first = procstats.host_cpu()
    assert first is not None and first.busy + first.idle > 0
