"""A py-spy profile of the gateway under saturating load: its biggest self-time frames."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.procs import BenchError
from bench.scenarios import Scenario, Target
from bench.wrk import Wrk


def ensure_py_spy() -> str:
    """py-spy from the venv, pip-installed into it when missing."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        print("bench: py-spy is not installed; pip install py-spy (into this venv)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=False, timeout=600
        )
    if not exe.exists():
        found = shutil.which("py-spy")
        if found is None:
            raise BenchError("py-spy could not be installed")
        return found
    return str(exe)


OWN = ("server/", "routes/", "limits/", "config/", "models/")


def _path(frame: str) -> str:
    """The file of a py-spy frame `name (path:line)`."""
    return frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]


def top_frames(folded: Path, n: int = 5) -> tuple[list[list[object]], list[list[object]]]:
    """From py-spy's raw (folded) output: the `n` biggest self-time frames, and the `n` biggest
    inclusive frames of the project's own code (leaving out the entry frames every sample has);
    each [frame, share of samples]."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, k = stack.split(";"), int(count)
        total += k
        own[frames[-1]] += k
        for f in set(frames):
            if _path(f).startswith(OWN):
                inclusive[f] += k
    if not total:
        return [], []
    below = [(f, c) for f, c in inclusive.most_common() if c < 0.95 * total]
    return (
        [[f, round(c / total, 4)] for f, c in own.most_common(n)],
        [[f, round(c / total, 4)] for f, c in below[:n]],
    )


def profile(
    gateway: Target,
    scenario: Scenario,
    wrk: Wrk,
    *,
    seconds: float,
    concurrency: int,
    out_dir: Path,
    cpus: str | None,
) -> dict[str, object]:
    """Record the gateway's worker(s) with py-spy while wrk saturates it."""
    assert gateway.child is not None
    exe = ensure_py_spy()
    pid = gateway.workers[0]  # with one worker, the serve process itself
    folded = out_dir / f"profile-{scenario.name}.txt"
    argv = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--gil",
        "--function",
        "--output",
        str(folded),
    ]
    if wrk.sup.pin and cpus:
        argv = ["taskset", "-c", cpus, *argv]
    load = threading.Thread(target=wrk.run, args=(gateway, [scenario], concurrency, seconds + 2))
    load.start()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    finally:
        load.join(seconds + 90)
    if done.returncode != 0 or not folded.exists():
        raise BenchError(f"py-spy failed: {(done.stdout + done.stderr)[-800:]}")
    self_time, inclusive = top_frames(folded, 10)
    return {
        "scenario": scenario.name,
        "pid": pid,
        "seconds": seconds,
        "folded": str(folded),
        "top_self": self_time,
        "top_inclusive_own_code": inclusive,
    }
