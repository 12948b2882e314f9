"""CPU time, memory and disk use of processes and directories, read from /proc and the disk.

Linux only (the figures come from /proc); elsewhere the readers return None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float  # user + system time of the process (all its threads) so far
    rss_bytes: int  # resident set now (VmRSS)
    rss_peak_bytes: int  # high-water mark since the process started (VmHWM)
    # Resident anonymous memory (heap, stacks) now: RSS less the mapped files, which for a
    # node are mostly the store's memory-mapped pages that the kernel may drop at will.
    rss_anon_bytes: int = 0


def sample(pid: int) -> ProcSample | None:
    """The process's CPU and memory now, or None when it is gone or /proc is unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    fields = stat[stat.rfind(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    mem = {}
    for line in status.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:")):
            name, value = line.split(":", 1)
            mem[name] = int(value.split()[0]) * 1024
    return ProcSample(
        (utime + stime) / CLOCK_TICKS, mem.get("VmRSS", 0), mem.get("VmHWM", 0), mem.get("RssAnon", 0)
    )


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk under `path` (as `du` counts them); 0 when it does not exist."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue  # a file removed while walking
    return total


def machine() -> dict[str, str | int | float]:
    """What the figures were measured on: cores, CPU model, memory, Python."""
    import platform

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover
        return (0.0, 0.0, 0.0)
