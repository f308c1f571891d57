"""CPU time and memory of a process tree, read from /proc (utime+stime, VmRSS, VmHWM)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are alive now."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen or not Path(f"/proc/{p}").exists():
            continue
        seen.append(p)
        todo += _children(p)
    return seen


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    """Resident memory of one process now, in MiB."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """The highest resident memory one process has had, in MiB (VmHWM)."""
    return _status_kb(pid, "VmHWM") / 1024


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds per pid of a tree at one moment."""

    per_pid: dict[int, float]

    @classmethod
    def take(cls, pids: list[int]) -> CpuSample:
        """Read every pid's CPU seconds now."""
        return cls({p: cpu_seconds(p) for p in pids})

    def since(self, earlier: CpuSample) -> float:
        """CPU seconds used between `earlier` and this sample, summed over the pids."""
        return sum(v - earlier.per_pid.get(p, 0.0) for p, v in self.per_pid.items())
