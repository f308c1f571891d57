"""Redis CPU and latency per request of the limits scripts, against an older revision's scripts.

Per scenario: median and p99 wall time of one request's calls (sequential), EVALSHA calls and
Redis CPU per request from INFO commandstats (the scripts' usec, before and after), and Redis
process CPU per request (INFO cpu). Scenarios: admit + settle with its audit event, at all
limits and unlimited; a streamed request with k extensions (admit + k extend + settle); a
refusal's record(); and the same admit + settle with the baseline revision's limits package.
"""

# Run: .venv/bin/python bench/bench_limits.py [--requests 5000] [--extends 4] [--rounds 3]
#      [--warm 0] [--baseline b8fb2e5] [--port 6390 | --redis-url redis://...] [--json out.json]
# --warm N runs N requests before measuring (the baseline's sorted sets grow with them).
# By default it starts a private redis-server on --port (nothing else uses it, so the
# commandstats figures are ours alone) and stops it afterwards.

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "b8fb2e5"  # the last revision with the sorted-set rpm and the set of settled ids
EVENT = b"x" * 400  # about the size of one audit event
LIMITS_FULL = {
    "rpm": 10**9,
    "tpm": 10**12,
    "max_concurrent": 1000,
    "daily_tokens": 10**12,
    "monthly_tokens": 10**13,
    "total_tokens": 10**14,
}


# ---------------------------------------------------------------- worker (one limits package)


async def _redis_stats(client: Any) -> tuple[int, int, float]:
    """(EVALSHA + EVAL calls, their usec, process CPU seconds) of the Redis server."""
    stats = await client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_evalsha_ro"):
        if name in stats:
            calls += int(stats[name]["calls"])
            usec += int(stats[name]["usec"])
    cpu = await client.info("cpu")
    return calls, usec, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _state(client: Any, namespace: str, tenant: str) -> tuple[int, int]:
    """(bytes, fields or members) of a tenant's limits keys, audit streams left out."""
    size = entries = 0
    async for raw in client.scan_iter(match=f"{namespace}:*{tenant}*", count=1000):
        kind = (await client.type(raw)).decode()
        size += int(await client.memory_usage(raw, samples=0) or 0)
        if kind == "hash":
            entries += await client.hlen(raw)
        elif kind == "zset":
            entries += await client.zcard(raw)
        elif kind != "stream":
            entries += 1
    return size, entries


async def _measure(
    client: Any, n: int, op: Callable[[int], Awaitable[None]], warm: int, where: tuple[str, str]
) -> dict[str, float]:
    for i in range(max(200, warm)):  # scripts loaded, connection open, state as after `warm`
        await op(-1 - i)
    before = await _redis_stats(client)
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        await op(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    after = await _redis_stats(client)
    size, entries = await _state(client, *where)
    samples.sort()
    calls, usec, cpu = (a - b for a, b in zip(after, before, strict=True))
    return {
        "median_us": statistics.median(samples),
        "p99_us": samples[min(n - 1, int(n * 0.99))],
        "script_calls_per_request": calls / n,
        "redis_script_us_per_request": usec / n,
        "redis_script_us_per_call": usec / calls if calls else 0.0,
        "redis_process_cpu_us_per_request": cpu * 1e6 / n,
        "state_bytes_after": size,
        "state_entries_after": entries,
    }


async def worker(redis_url: str, n: int, extends: int, warm: int) -> list[dict[str, Any]]:
    """Run every scenario the importable ``limits`` package supports; one dict per scenario."""
    from redis.asyncio import Redis

    lib: Any = importlib.import_module("limits")  # this tree's or the baseline's: either API

    new_api = "output" in {f.name for f in dataclasses.fields(lib.Ask)}
    client = Redis.from_url(redis_url)
    namespace = f"nzgw-bench-{uuid.uuid4().hex}"
    backend = lib.RedisLimits(client, namespace=namespace, owns_client=False)
    full, none = lib.Limits(**LIMITS_FULL), lib.Limits()
    run = uuid.uuid4().hex[:8]
    rows: list[dict[str, Any]] = []

    def ask(i: int, output: str) -> Any:
        if new_api:
            return lib.Ask(f"{run}-{output}-{i}", 200, None, output)
        return lib.Ask(f"{run}-{output}-{i}", 200, 100)

    async def admit_settle(subject: Any, i: int, output: str) -> None:
        a = await backend.admit(subject, ask(i, output))
        assert a.ticket is not None, a
        if new_api:
            assert await backend.settle(a.ticket, 250, event=EVENT)
        else:
            await backend.settle(a.ticket, 250)

    async def streamed(subject: Any, i: int) -> None:
        a = await backend.admit(subject, ask(i, "stream"))
        ticket = a.ticket
        assert ticket is not None and ticket.stepped, a
        for _ in range(extends):
            ext = await backend.extend(ticket)
            assert ext.granted > 0, ext
            ticket = ext.ticket
        assert await backend.settle(ticket, 200 + extends * 512, event=EVENT)

    try:

        async def scenario(
            name: str, limits: Any, op: Callable[[Any, int], Awaitable[None]]
        ) -> None:
            tenant = f"bench-t{len(rows)}"  # one tenant per scenario: its state measured alone
            subject = lib.Subject(tenant, "bench-k", limits, limits)
            await backend.seed(subject, lib.Usage(0, 0, 0), lib.Usage(0, 0, 0))

            async def one(i: int) -> None:
                await op(subject, i)

            row = await _measure(client, n, one, warm, (namespace, tenant))
            rows.append({"scenario": name, **row})

        what = "admit + settle with its event" if new_api else "admit + settle"
        for label, limits in (("all limits", full), ("unlimited", none)):

            async def pair(s: Any, i: int) -> None:
                await admit_settle(s, i, "single")

            await scenario(f"{what}, {label}", limits, pair)
        if new_api:
            await scenario(f"stream: admit + {extends} extend + settle, all limits", full, streamed)

            async def stream_once(s: Any, i: int) -> None:
                a = await backend.admit(s, ask(i, "stream"))
                assert a.ticket is not None
                assert await backend.settle(a.ticket, 250, event=EVENT)

            await scenario("stream: admit + settle (no extension), all limits", full, stream_once)

            async def record(s: Any, i: int) -> None:
                assert await backend.record(EVENT, shard_key=f"{run}-{i}")

            await scenario("record (a refusal's event)", none, record)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
        for j in range(0, len(keys), 1000):
            await client.delete(*keys[j : j + 1000])
        await client.aclose()
    return rows


# ---------------------------------------------------------------- parent (rounds, table)


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found: pass --redis-url")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if done.stdout.strip() == "PONG":
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"redis-server on port {port} did not start")


def _run_worker(
    pythonpath: str, redis_url: str, options: argparse.Namespace
) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    cmd = [sys.executable, __file__, "--worker", "--redis-url", redis_url]
    cmd += ["--requests", str(options.requests), "--extends", str(options.extends)]
    cmd += ["--warm", str(options.warm)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd="/")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def _baseline_tree(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "limits"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def main(options: argparse.Namespace) -> None:
    if options.worker:
        rows = worker(options.redis_url, options.requests, options.extends, options.warm)
        print(json.dumps(asyncio.run(rows)))
        return
    proc = None
    url = options.redis_url
    if url is None:
        proc = _start_redis(options.port)
        url = f"redis://127.0.0.1:{options.port}/0"
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _baseline_tree(options.baseline, Path(tmp))
            for _ in range(options.rounds):  # alternate, so drift hits both alike
                for tag, path in (("this tree", str(ROOT)), (f"at {options.baseline}", tmp)):
                    for row in _run_worker(path, url, options):
                        results.setdefault(f"{tag}: {row['scenario']}", []).append(row)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    table = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "scenario"}
        for name, rows in results.items()
    }
    print(
        f"{options.requests} sequential requests per scenario, median of {options.rounds} rounds; "
        f"Redis {'private on port ' + str(options.port) if proc else url}"
    )
    head = ("med us", "p99 us", "calls", "script us", "us/call", "cpu us", "state B", "entries")
    print(f"{'':62}" + "".join(f"{h:>10}" for h in head))
    for name, row in table.items():
        print(f"{name:62}" + "".join(f"{v:10.1f}" for v in row.values()))
    print(
        "per request: median and p99 wall time of its calls, script calls, their Redis time "
        "(INFO commandstats), per call, Redis process CPU (INFO cpu); the tenant's limits "
        "state after the run (MEMORY USAGE, fields and members; audit streams left out)"
    )
    if options.json:
        Path(options.json).write_text(json.dumps({"rounds": results, "medians": table}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--extends", type=int, default=4, help="extensions per streamed request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warm", type=int, default=0, help="requests run before each scenario is measured"
    )
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare against")
    parser.add_argument("--port", type=int, default=6390, help="port of the private redis-server")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a private one")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    main(parser.parse_args())
