"""What admission and settle add per relayed request: the gateway with Redis limits against the
same gateway without limits (and Ollama's fake served directly), in one run."""

# Run: .venv/bin/python bench/bench_relay.py [--requests 300] [--rounds 5] [--concurrency 16]
# Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Uses a temporary SQLite database.

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, free_port, gateway_env

BODY = {
    "model": "llama3.2",
    "prompt": "Why is the sky blue?",
    "stream": False,
    "options": {"num_predict": 4},
}
LIMITS = [
    "--rpm",
    "1000000",
    "--tpm",
    "1000000000",
    "--max-concurrent",
    "1000",
    "--daily-tokens",
    "1000000000000",
    "--monthly-tokens",
    "1000000000000",
    "--total-tokens",
    "1000000000000",
]


def _start_nolimits(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "nolimits_serve.py"), "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the no-limits gateway did not start")


async def _sequential(url: str, path: str, headers: dict[str, str], n: int) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(n):
            t = time.perf_counter()
            r = await client.post(url + path, json=BODY, headers=headers)
            out.append((time.perf_counter() - t) * 1e3)
            if r.status_code != 200:
                raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")
    return out


async def _throughput(url: str, headers: dict[str, str], n: int, conc: int) -> float:
    sem = asyncio.Semaphore(conc)
    limits = httpx.Limits(max_connections=conc)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one() -> None:
            async with sem:
                r = await client.post(url + "/api/generate", json=BODY, headers=headers)
                assert r.status_code == 200, r.text

        t = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - t)


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    """Run the comparison and print a table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nzgw-bench-"))
    with FakeOllama() as fake:
        env = gateway_env(
            DATABASE_URL=f"sqlite://{tmp / 'bench.sqlite3'}",
            REDIS_URL=args.redis_url,
            REDIS_NAMESPACE=f"nzgw-bench-{uuid.uuid4().hex[:8]}",
            OLLAMA_URL=fake.url,
        )
        cli(env, "migrate")
        cli(env, "create-tenant", "--name", "bench", *LIMITS)
        key = create_key(env, "bench", "k", *LIMITS)
        auth = {"Authorization": f"Bearer {key}"}
        proc, bare_url = _start_nolimits(env)
        try:
            with Gateway(env, workers=1, migrate=False) as gw:
                targets = {
                    "fake direct": (fake.url, {}),
                    "gateway, no limits": (bare_url, auth),
                    "gateway, Redis limits": (gw.url, auth),
                }
                lat: dict[str, list[float]] = {name: [] for name in targets}
                for url, headers in targets.values():  # warm-up (key cache, pools)
                    asyncio.run(_sequential(url, "/api/generate", headers, 30))
                for _ in range(args.rounds):  # interleaved, so drift hits all alike
                    for name, (url, headers) in targets.items():
                        lat[name] += asyncio.run(
                            _sequential(url, "/api/generate", headers, args.requests // args.rounds)
                        )
                rps = {
                    name: asyncio.run(_throughput(url, headers, args.requests, args.concurrency))
                    for name, (url, headers) in targets.items()
                }
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        f"{args.requests} sequential POST /api/generate per target (num_predict=4), "
        f"{args.rounds} interleaved rounds; throughput at concurrency {args.concurrency}"
    )
    print(f"{'target':24} {'median ms':>10} {'p99 ms':>8} {'req/s':>8}")
    for name in targets:
        print(
            f"{name:24} {statistics.median(lat[name]):10.2f} {_p(lat[name], 0.99):8.2f} "
            f"{rps[name]:8.0f}"
        )
    bare, limited = lat["gateway, no limits"], lat["gateway, Redis limits"]
    print(
        f"admission + settle add: median {statistics.median(limited) - statistics.median(bare):+.2f} ms, "
        f"p99 {_p(limited, 0.99) - _p(bare, 0.99):+.2f} ms"
    )


if __name__ == "__main__":
    main()
