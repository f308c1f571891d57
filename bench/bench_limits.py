"""Measure admit+settle per call for the Redis and memory limits backends, against a PING."""

# Run: .venv/bin/python bench/bench_limits.py [--calls 2000] [--redis-url redis://...]

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from limits import Ask, Limits, LimitsBackend, MemoryLimits, RedisLimits, Subject, Usage

FULL = Limits(
    rpm=10**9,
    tpm=10**12,
    max_concurrent=1000,
    daily_tokens=10**12,
    monthly_tokens=10**13,
    total_tokens=10**14,
)
SUBJECTS = {
    "all limits": Subject("bench-t", "bench-k", FULL, FULL),
    "unlimited": Subject("bench-t2", "bench-k2", Limits(), Limits()),
}


async def timed(calls: int, op: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """Median and p99 of ``op`` in microseconds over ``calls`` sequential calls (after warm-up)."""
    for i in range(min(100, calls)):
        await op(-1 - i)
    samples = []
    for i in range(calls):
        start = time.perf_counter_ns()
        await op(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def admit_settle(backend: LimitsBackend, subject: Subject) -> Callable[[int], Awaitable[None]]:
    run = uuid.uuid4().hex[:8]

    async def op(i: int) -> None:
        admission = await backend.admit(subject, Ask(f"{run}-{i}", 200, 100))
        assert admission.ticket is not None, admission
        await backend.settle(admission.ticket, 250)

    return op


async def main(calls: int, redis_url: str) -> None:
    namespace = f"nzgw-bench-{uuid.uuid4().hex}"
    client = Redis.from_url(redis_url)
    redis_backend = RedisLimits(client, namespace=namespace, owns_client=False)
    backends: dict[str, LimitsBackend] = {"redis": redis_backend, "memory": MemoryLimits()}
    rows: list[tuple[str, float, float]] = []
    try:

        async def ping(_: int) -> None:
            await client.ping()

        rows.append(("redis PING (baseline, 1 round trip)", *await timed(calls, ping)))
        for name, backend in backends.items():
            for label, subject in SUBJECTS.items():
                await backend.seed(subject, Usage(0, 0, 0), Usage(0, 0, 0))
                op = admit_settle(backend, subject)
                rows.append((f"{name} admit+settle, {label}", *await timed(calls, op)))
    finally:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    print(f"{calls} sequential calls each, microseconds per call")
    print(f"{'':48} {'median':>9} {'p99':>9}")
    for label, median, p99 in rows:
        print(f"{label:48} {median:9.1f} {p99:9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.redis_url))
