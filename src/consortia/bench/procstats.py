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
    cpu_s: float  # user + system time of the process (all its threads) and its children so far
    rss_bytes: int  # resident set now (VmRSS)
    rss_peak_bytes: int  # high-water mark since the process started (VmHWM)
    # Resident anonymous memory (heap, stacks) now: RSS less the mapped files, which for a
    # node are mostly the store's memory-mapped pages that the kernel may drop at will.
    rss_anon_bytes: int = 0


def sample(pid: int) -> ProcSample | None:
    """CPU and memory of the process and its live descendants (a node's signature
    verification workers are processes of their own), or None when it is gone or /proc is
    unavailable. Peak RSS adds each process's own high-water mark, an upper bound."""
    own = _sample_one(pid)
    if own is None:
        return None
    cpu_s, rss, peak, anon = own.cpu_s, own.rss_bytes, own.rss_peak_bytes, own.rss_anon_bytes
    for child in _descendants(pid):
        got = _sample_one(child)
        if got is not None:
            cpu_s += got.cpu_s
            rss += got.rss_bytes
            peak += got.rss_peak_bytes
            anon += got.rss_anon_bytes
    return ProcSample(cpu_s, rss, peak, anon)


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _sample_one(pid: int) -> ProcSample | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    fields = stat[stat.rfind(")") + 2 :].split()
    # Own user + system time, plus that of children already waited for (cutime, cstime).
    ticks = sum(int(f) for f in fields[11:15])
    mem = {}
    for line in status.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:")):
            name, value = line.split(":", 1)
            mem[name] = int(value.split()[0]) * 1024
    return ProcSample(ticks / CLOCK_TICKS, mem.get("VmRSS", 0), mem.get("VmHWM", 0), mem.get("RssAnon", 0))


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


@dataclass(frozen=True)
class HostCpu:
    """The host's CPU time so far, all CPUs together, in clock ticks (the first line of
    /proc/stat). Steal is time the hypervisor gave this machine's CPUs to someone else: on
    a shared virtual machine it is the one figure that says how much of the measured
    slowdown was not the software's."""

    busy: int  # user, nice, system, irq, softirq (guest time is counted inside user)
    idle: int  # idle and iowait
    steal: int


def host_cpu(stat_text: str | None = None) -> HostCpu | None:
    """The host's CPU counters, from `stat_text` (the contents of /proc/stat) or the file
    itself; None where there is no /proc/stat or its first line is not the `cpu` total."""
    if stat_text is None:
        try:
            stat_text = Path("/proc/stat").read_text()
        except OSError:
            return None
    fields = stat_text.split("\n", 1)[0].split()
    if len(fields) < 5 or fields[0] != "cpu":
        return None
    try:
        ticks = [int(f) for f in fields[1:9]] + [0] * (9 - len(fields))
    except ValueError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
    return HostCpu(user + nice + system + irq + softirq, idle + iowait, steal)


def host_cpu_shares(before: HostCpu | None, after: HostCpu | None) -> dict[str, float]:
    """Percent of all CPU time between two readings that was busy, idle and stolen; empty
    when either reading is missing or no tick passed."""
    if before is None or after is None:
        return {}
    busy, idle, steal = after.busy - before.busy, after.idle - before.idle, after.steal - before.steal
    total = busy + idle + steal
    if total <= 0:
        return {}
    return {
        "busy_pct": round(100 * busy / total, 1),
        "idle_pct": round(100 * idle / total, 1),
        "steal_pct": round(100 * steal / total, 1),
    }


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover
        return (0.0, 0.0, 0.0)
