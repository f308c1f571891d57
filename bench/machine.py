"""What the figures were measured on: CPU, cores, kernel, load, Python and the versions in play."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "-"


def _wrk_version(exe: str) -> str:
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout + done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "?"


def _commit(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout.strip() or "?"


def versions(wrk: str) -> dict[str, str]:
    """The versions of what is measured and what measures (more are added as they start)."""
    names = (
        "sanic",
        "httpx",
        "httpx-aiohttp",
        "aiohttp",
        "uvloop",
        "redis",
        "tortoise-orm",
        "asyncpg",
    )
    return {name: _version(name) for name in names} | {"wrk": _wrk_version(wrk)}


def describe(root: Path) -> dict[str, object]:
    """The machine, for the report's header and the JSON."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _commit(root),
    }


def header(m: dict[str, object], soft: dict[str, str]) -> str:
    """Two lines naming the machine and the versions."""
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, load {m['load_avg_at_start']} at start"
        + (f", {m['load_avg_at_end']} at end" if "load_avg_at_end" in m else "")
        + f", commit {m['commit']}"
        "\n  " + ", ".join(f"{k} {v}" for k, v in soft.items())
    )
