"""The table's measurements: interleaved rounds of throughput, latency at c=1 and first chunk."""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from bench.procs import BenchError
from bench.procstat import CpuSample, cpu_seconds, peak_rss_mb, tree
from bench.redisbox import script_commands
from bench.scenarios import Scenario, Target
from bench.stack import ROOT, Stack
from bench.ttfb import first_chunk_ms
from bench.wrk import Wrk


@dataclass(frozen=True)
class Plan:
    """How long and how hard each measurement runs."""

    rounds: int
    seconds: float  # each throughput run
    latency_seconds: float  # each c=1 run
    concurrency: int
    ttfb_requests: int
    warmup_seconds: float
    settle_seconds: float = 1.2  # after a gateway run: its audit batch is written within 1 s


@dataclass
class Cell:
    """One target on one scenario: a value per round for each figure."""

    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    redis_top: list[tuple[str, int, int]] = field(default_factory=list)

    def add(self, name: str, value: float | None) -> None:
        """Record one round's value of a figure."""
        if value is not None:
            self.values[name].append(value)

    def median(self, name: str) -> float | None:
        """The median over rounds, or None if never measured."""
        got = self.values.get(name)
        return statistics.median(got) if got else None


def probe(t: Target, s: Scenario) -> None:
    """One request, allowed to be slow (first-request costs); it must answer 200."""
    headers = {"Content-Type": "application/json", **t.headers}
    try:
        r = httpx.post(t.url + s.path, content=s.payload, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise BenchError(f"{t.name} did not answer {s.path}: {exc!r}") from exc
    if r.status_code != 200:
        raise BenchError(f"{t.name} answered {s.path} with {r.status_code}: {r.text[:300]}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    """Runs the rounds over every target and scenario and keeps the cells."""

    def __init__(self, stack: Stack, targets: list[Target], wrk: Wrk, plan: Plan) -> None:
        self.stack, self.targets, self.wrk, self.plan = stack, targets, wrk, plan
        self.cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
        self.inner = script_commands(ROOT)

    def _throughput(self, t: Target, s: Scenario, seconds: float | None = None) -> None:
        """One saturating run; a target too slow for the run's length (fewer than 50 answers:
        LiteLLM in --quick) is run again for longer, up to 10 s."""
        cell = self.cells[(s.name, t.name)]
        pids = tree(t.child.pid) if t.child else []
        redis = self.stack.redis
        seconds = seconds or self.plan.seconds
        cpu0, wall0 = CpuSample.take(pids), time.monotonic()
        stats0 = redis.stats() if t.uses_redis else None
        rcpu0 = cpu_seconds(redis.child.pid) if redis.child and t.uses_redis else None
        res = self.wrk.run(t, [s], self.plan.concurrency, seconds)
        if res.requests < 50 and seconds < 10:
            return self._throughput(t, s, min(10.0, seconds * 4))
        if t.uses_redis:
            time.sleep(self.plan.settle_seconds)
        cpu = CpuSample.take(pids).since(cpu0)
        wall = time.monotonic() - wall0
        cell.errors += res.errors
        if res.errors:
            print(
                f"  ! {t.name} {s.name}: {res.errors} errors (non-2xx, socket errors or "
                f"timeouts) in {res.requests} requests",
                file=sys.stderr,
            )
        n = max(res.requests, 1)
        cell.add("rps", res.rps)
        cell.add("cpu_us", cpu / n * 1e6)
        util = cpu / max(res.seconds, wall - self.plan.settle_seconds, 0.001)
        cell.add("cpu_util", util)
        cell.add("rps_per_core", res.rps / util if util else None)
        if stats0 is not None:
            diff = redis.stats().minus(stats0)
            cell.add("redis_us", diff.top_level_usec(self.inner) / n)
            cell.add("redis_calls", diff.top_level_calls(self.inner) / n)
            cell.redis_top = diff.top()
        if rcpu0 is not None and redis.child is not None:
            cell.add("redis_proc_us", (cpu_seconds(redis.child.pid) - rcpu0) / n * 1e6)

    def _latency(self, t: Target, s: Scenario) -> None:
        cell = self.cells[(s.name, t.name)]
        res = self.wrk.run(t, [s], 1, self.plan.latency_seconds)
        cell.errors += res.errors
        cell.add("p50_ms", res.p50_ms)
        cell.add("p99_ms", res.p99_ms)
        if s.stream:
            got = first_chunk_ms(t, s, self.plan.ttfb_requests)
            cell.add("ttfb_p50_ms", statistics.median(got))
            cell.add("ttfb_p99_ms", _pct(got, 0.99))

    def _added(self, s: Scenario, t: Target, direct: Target) -> None:
        cell, base = self.cells[(s.name, t.name)], self.cells[(s.name, direct.name)]
        for name in ("p50_ms", "p99_ms", "ttfb_p50_ms", "ttfb_p99_ms"):
            if cell.values.get(name) and base.values.get(name):
                cell.add("added_" + name, cell.values[name][-1] - base.values[name][-1])

    def warm_up(self, scenarios: list[Scenario]) -> None:
        """A short run per target and scenario: key caches, pools, first-request costs."""
        for t in self.targets:
            for s in scenarios:
                if t.supports(s):
                    probe(t, s)
                    self.wrk.run(t, [s], 8, self.plan.warmup_seconds)

    def run(self, scenarios: list[Scenario]) -> None:
        """Every round: each scenario, each target (order rotated per round)."""
        direct = self.targets[0]
        for r in range(self.plan.rounds):
            order = self.targets[r % len(self.targets) :] + self.targets[: r % len(self.targets)]
            for s in scenarios:
                self.stack.fake_reset()
                print(f"round {r + 1}/{self.plan.rounds}: {s.name}", file=sys.stderr, flush=True)
                for t in order:
                    if t.supports(s):
                        self._throughput(t, s)
                for t in order:
                    if t.supports(s):
                        self._latency(t, s)
                for t in self.targets[1:]:
                    if t.supports(s):
                        self._added(s, t, direct)

    def peak_rss(self) -> dict[str, dict[str, float]]:
        """Per target: the sum and the largest of VmHWM over its processes, in MiB."""
        out = {}
        for t in self.targets:
            pids = tree(t.child.pid) if t.child else []
            peaks = [peak_rss_mb(p) for p in pids] or [0.0]
            out[t.name] = {
                "sum_mb": sum(peaks),
                "max_process_mb": max(peaks),
                "processes": float(len(pids)),
            }
        return out
