"""The load generator: wrk with a Lua script for POST bodies and the key, its summary as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError, Supervisor
from bench.scenarios import Scenario, Target

DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def _lua(text: str) -> str:
    if "]==]" in text:
        raise ValueError("cannot quote this for Lua")
    return f"[==[{text}]==]"


def _headers(target: Target) -> str:
    items = {"Content-Type": "application/json", **target.headers}
    return "{" + ", ".join(f"[ {_lua(k)} ] = {_lua(v)}" for k, v in items.items()) + "}"


def script(target: Target, scenarios: list[Scenario]) -> str:
    """A Lua script that sends the scenarios' requests in turn (one scenario: always the same)."""
    reqs = ",\n  ".join(
        f'wrk.format("POST", {_lua(s.path)}, {_headers(target)}, {_lua(s.payload.decode())})'
        for s in scenarios
    )
    return (
        f"local reqs = nil\nlocal i = 0\n"
        f"function init(args)\n  reqs = {{\n  {reqs}\n  }}\nend\n"
        "function request()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n" + DONE
    )


@dataclass(frozen=True)
class WrkResult:
    """wrk's summary of one run."""

    requests: int
    seconds: float
    errors: int  # non-2xx answers, connect/read/write errors and timeouts together
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


class Wrk:
    """Runs wrk pinned to the load CPUs, with scripts written into the run's private folder."""

    def __init__(self, sup: Supervisor, cpus: str | None) -> None:
        self.exe = ensure_wrk()
        self.sup = sup
        self.cpus = cpus
        self._scripts: dict[tuple[str, tuple[str, ...]], Path] = {}

    def _script(self, target: Target, scenarios: list[Scenario]) -> Path:
        key = (target.name, tuple(s.name for s in scenarios))
        if key not in self._scripts:
            path = self.sup.workdir / f"wrk-{len(self._scripts)}.lua"
            path.write_text(script(target, scenarios))
            path.chmod(0o600)  # it holds the key
            self._scripts[key] = path
        return self._scripts[key]

    def argv(
        self, target: Target, scenarios: list[Scenario], conns: int, seconds: float
    ) -> list[str]:
        """The wrk command line for one run."""
        argv = [
            self.exe,
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(self._script(target, scenarios)),
            target.url,
        ]
        if self.sup.pin and self.cpus:
            argv = ["taskset", "-c", self.cpus, *argv]
        return argv

    def run(
        self, target: Target, scenarios: list[Scenario], conns: int, seconds: float
    ) -> WrkResult:
        """Run wrk to the end and parse its summary."""
        argv = self.argv(target, scenarios, conns, seconds)
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"wrk against {target.name} did not finish") from exc
        return parse(done.stdout, done.stderr, target.name)


def parse(stdout: str, stderr: str, name: str) -> WrkResult:
    """The BENCH-JSON line of wrk's output as a WrkResult."""
    for line in stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            d = json.loads(line.removeprefix("BENCH-JSON "))
            errors = sum(
                d[k]
                for k in (
                    "status_errors",
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "timeouts",
                )
            )
            return WrkResult(
                d["requests"],
                d["duration_us"] / 1e6,
                errors,
                d["p50_us"] / 1e3,
                d["p99_us"] / 1e3,
                d["max_us"] / 1e3,
            )
    raise BenchError(f"wrk against {name} printed no summary: {(stdout + stderr)[-1500:]}")


def ensure_wrk() -> str:
    """wrk's path; installed from Debian's packages (apt-get, as root) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(
            "bench: wrk is not installed; installing Debian's package: apt-get install -y wrk",
            file=sys.stderr,
            flush=True,
        )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for argv in (
            ["apt-get", "install", "-y", "-q", "wrk"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "wrk"],
        ):
            subprocess.run(argv, env=env, capture_output=True, timeout=600, check=False)
            found = shutil.which("wrk")
            if found:
                return found
    raise BenchError("wrk is not installed and could not be installed: apt-get install -y wrk")
