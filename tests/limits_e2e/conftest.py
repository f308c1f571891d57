"""A fake Ollama and two gateway replicas of two workers, shared by the limits end-to-end tests."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, free_port, gateway_env, replicas

MODEL = "llama3.2"


@dataclass
class Cluster:
    """The fake, the replicas and the environment the CLI uses."""

    fake: FakeOllama
    replicas: list[Gateway]
    env: dict[str, str]
    tenants: list[str] = field(default_factory=list)

    def tenant(self, *flags: str) -> str:
        """A new tenant with these limit flags."""
        name = f"t{uuid.uuid4().hex[:8]}"
        cli(self.env, "create-tenant", "--name", name, *flags)
        return name

    def key(self, tenant: str, *flags: str) -> str:
        """A new key of `tenant` with these flags."""
        return create_key(self.env, tenant, f"k{uuid.uuid4().hex[:8]}", *flags)


def env_for(database_url: str, redis_url: str, fake: FakeOllama, **extra: str) -> dict[str, str]:
    """Gateway environment on its own database and Redis namespace."""
    return gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_NAMESPACE=f"nzgw-t-{uuid.uuid4().hex[:12]}",
        OLLAMA_URL=fake.url,
        **extra,
    )


@pytest.fixture(scope="package")
def fake() -> Iterator[FakeOllama]:
    """One fake Ollama for the package; each test resets its config."""
    with FakeOllama() as f:
        yield f


@pytest.fixture(autouse=True)
def _reset_fake(fake: FakeOllama) -> None:
    fake.reset()


@pytest.fixture(scope="package")
def cluster(package_db: str, fake: FakeOllama) -> Iterator[Cluster]:
    """Two replicas of two workers each on one database and one Redis."""
    env = env_for(package_db, REDIS_URL, fake)
    with replicas(env) as started:
        yield Cluster(fake, started, env)


class PrivateRedis:
    """A redis-server of our own, to flush, stop and restart without touching anyone else's."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (empty) and wait until it answers."""
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if self.cmd("PING") == "PONG":
                return
            asyncio.run(asyncio.sleep(0.05))
        raise AssertionError("private redis did not start")

    def cmd(self, *args: str) -> str:
        """Run redis-cli against it."""
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return done.stdout.strip()

    def stop(self) -> None:
        """Kill it (like a crash)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server private to one test."""
    r = PrivateRedis()
    r.start()
    try:
        yield r
    finally:
        r.stop()


def generate_body(
    stream: bool, prompt: str = "Why is the sky blue?", **options: Any
) -> dict[str, Any]:
    """An /api/generate body; no output cap unless options name one."""
    body: dict[str, Any] = {"model": MODEL, "prompt": prompt, "stream": stream}
    if options:
        body["options"] = options
    return body


async def generate_many(
    urls: list[str], key: str, n: int, *, stream: bool = False, **options: Any
) -> list[httpx.Response]:
    """n concurrent /api/generate requests, spread round-robin over `urls`, bodies read."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:

        async def one(i: int) -> httpx.Response:
            r = await client.post(
                urls[i % len(urls)] + "/api/generate",
                json=generate_body(stream, **options),
                headers={"Authorization": f"Bearer {key}"},
            )
            await r.aread()
            return r

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    """How many of each status."""
    return Counter(r.status_code for r in responses)


def usage(url: str, key: str) -> dict[str, Any]:
    """GET /v1/usage for a key."""
    r = httpx.get(url + "/v1/usage", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data
