"""The RSS soak: mixed traffic through the gateway, each worker's RSS sampled, flat within 10%."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.procs import BenchError
from bench.procstat import rss_mb
from bench.scenarios import SCENARIOS, Target
from bench.stack import Stack
from bench.wrk import Wrk, parse


def soak(
    stack: Stack,
    gateway: Target,
    wrk: Wrk,
    *,
    seconds: float,
    concurrency: int,
    limit: float = 0.10,
) -> dict[str, object]:
    """Run wrk with every scenario in turn for `seconds`; sample RSS about 60 times."""
    argv = wrk.argv(gateway, list(SCENARIOS), concurrency, seconds)
    every = max(1.0, seconds / 60)
    pids = gateway.workers
    samples: list[tuple[float, list[float]]] = []
    keys0, mem0 = stack.redis.namespace_keys(), stack.redis.used_memory_mb()
    stack.fake_reset()
    started = time.monotonic()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    ) as proc:
        try:
            while proc.poll() is None:
                samples.append((time.monotonic() - started, [rss_mb(p) for p in pids]))
                if len(samples) % 5 == 0:
                    stack.fake_reset()  # the fake records every request: keep its memory flat
                time.sleep(every)
                if time.monotonic() - started > seconds + 60:
                    raise BenchError("wrk did not end the soak in time")
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    res = parse(out, err, gateway.name)
    warm = [s for s in samples if s[0] >= seconds * 0.1] or samples
    per_worker = []
    for i, pid in enumerate(pids):
        series = [s[1][i] for s in warm]
        base, last, peak = series[0], series[-1], max(series)
        per_worker.append(
            {
                "pid": pid,
                "rss_after_warmup_mb": base,
                "rss_end_mb": last,
                "rss_max_mb": peak,
                "growth": (peak - base) / base if base else 0.0,
            }
        )
    if res.errors:
        print(f"  ! soak: {res.errors} errors in {res.requests} requests", file=sys.stderr)
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "requests": res.requests,
        "rps": res.rps,
        "errors": res.errors,
        "limit": limit,
        "flat": all(w["growth"] <= limit for w in per_worker),
        "workers": per_worker,
        "samples": [[round(t, 1), *[round(v, 1) for v in vals]] for t, vals in samples],
        "redis_namespace_keys": [keys0, stack.redis.namespace_keys()],
        "redis_used_memory_mb": [round(mem0, 2), round(stack.redis.used_memory_mb(), 2)],
    }
