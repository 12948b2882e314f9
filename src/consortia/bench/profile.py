"""Sampling profiles of the nodes during a run, with py-spy when it is installed.

py-spy is not a dependency: `pip install py-spy` to use `--profile`. Each node process is
sampled (all threads, idle frames dropped; or only the thread holding the GIL) into a
collapsed-stack file; `top_costs` reads
it back as the functions with the most samples on top of the stack (self) and anywhere on
it (inclusive), as a share of all samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from consortia.bench.errors import BenchError

RATE_HZ = 97  # not a multiple of common timer frequencies
# Frames every stack of a thread or of the CLI start-up passes through: ranking them says nothing.
PLUMBING = (
    "threading.py",
    "futures/thread.py",
    "<frozen runpy>",
    "typer/",
    "_click/",
    "click/",
    "uvloop/__init__.py",
    "asyncio/runners.py",
    "consortia/__main__.py",
    "cli/node_cmd.py",
    "node/main.py",
)


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@dataclass
class Profiler:
    out: Path
    procs: list[tuple[str, subprocess.Popen[bytes], Path]]

    @classmethod
    def start(cls, out: Path, pids: list[tuple[str, int]], duration_s: float, gil: bool = False) -> Profiler:
        """Sample every pid for `duration_s`; with `gil`, only threads holding the GIL (the
        serial Python work that bounds a node however many cores it has).

        Raises BenchError when py-spy is not installed.
        """
        exe = py_spy()
        if exe is None:
            raise BenchError("--profile needs py-spy: pip install py-spy")
        out.mkdir(parents=True, exist_ok=True)
        procs = []
        for name, pid in pids:
            path = out / f"{name}.collapsed"
            cmd = [exe, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw"]
            cmd += ["--duration", str(max(1, int(duration_s))), "--nonblocking", "--output", str(path)]
            cmd.append("--subprocesses")  # the node's signature verification workers
            if gil:
                cmd.append("--gil")
            log = (out / f"{name}.py-spy.log").open("wb")
            procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), path))
        return cls(out, procs)

    def finish(self, timeout_s: float = 60.0) -> dict[str, dict[str, list[tuple[str, float]]]]:
        """Wait for every sampler; returns per node {"self": [...], "inclusive": [...]}."""
        out = {}
        for name, proc, path in self.procs:
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(10)
            if path.exists():
                out[name] = top_costs(path)
        return out


def top_costs(path: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """The hottest functions of a collapsed-stack file, as percentages of all samples.

    Samples are counted per thread, so a node busy on two threads contributes two samples
    per tick: shares are of the node's busy thread time, not of wall time.
    """
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        # Leading frames name the process (and its parent, for a worker) and the thread;
        # keep them out of the ranks.
        while frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        if not frames:
            continue
        total += n
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for f in set(frames):
            if not any(p in f for p in PLUMBING):
                incl_n[f] = incl_n.get(f, 0) + n
    if not total:
        return {"self": [], "inclusive": []}

    def rank(d: dict[str, int]) -> list[tuple[str, float]]:
        return [
            (k, round(100 * v / total, 1)) for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ]

    return {"self": rank(self_n), "inclusive": rank(incl_n)}


def _short(frame: str) -> str:
    """'func (path/to/module.py:123)' -> 'func (module.py)'; line numbers would split a function."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = file.replace("\\", "/").split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else parts[0]
    return f"{name} ({short})"
