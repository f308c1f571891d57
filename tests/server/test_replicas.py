"""Two replicas of two workers on one PostgreSQL and Redis: keys work everywhere, revocation is
seen everywhere within a second, Argon2id runs at most once per key per worker, logs hold no
secrets."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from server.auth.throttle import FAILURES_PER_SOURCE
from tests.gateway import Gateway, cli, create_key, gateway_env, per_worker

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def env(database_url: str, redis_namespace: str) -> dict[str, str]:
    return gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=redis_namespace,
        OLLAMA_URL="http://127.0.0.1:9",
        KEY_CACHE_TTL="300",
    )


@pytest.fixture
def replicas(env: dict[str, str]) -> Iterator[tuple[Gateway, Gateway]]:
    first = Gateway(env, workers=2).start()
    second = Gateway(env, workers=2, migrate=False).start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


async def _statuses(url: str, key: str, n: int) -> Counter[int]:
    """n concurrent requests, each on a fresh connection (`Connection: close`)."""
    headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one() -> int:
            r = await client.get(url + "/v1/usage", headers=headers)
            return r.status_code

        return Counter(await asyncio.gather(*(one() for _ in range(n))))


def _verifications(log: str) -> Counter[str]:
    """Argon2id verifications per worker pid, from the text log."""
    return Counter(re.findall(r"pid=(\d+) key verification", log))


def test_key_accepted_by_all_then_revoked_everywhere_within_a_second(
    env: dict[str, str], replicas: tuple[Gateway, Gateway]
) -> None:
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "prod-server-1")
    for gw in replicas:  # every worker of each replica accepts (and so caches) the key
        assert all(s == {200} for s in per_worker(gw.url, key).values())
        assert len(_verifications(gw.log())) == 2, gw.log()
    cli(env, "revoke-key", "--prefix", key[:11])
    time.sleep(1.0)
    for gw in replicas:
        assert all(s == {401} for s in per_worker(gw.url, key).values())


def test_verification_is_bounded_for_good_and_bad_secrets(
    env: dict[str, str], replicas: tuple[Gateway, Gateway]
) -> None:
    gw = replicas[0]
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "k1")
    assert asyncio.run(_statuses(gw.url, key, 200)) == Counter({200: 200})
    per_worker = _verifications(gw.log())
    assert sum(per_worker.values()) <= 2 and all(n == 1 for n in per_worker.values())

    wrong = [key[:11] + f"{i:040d}" for i in range(500)]

    async def flood() -> tuple[Counter[int], Counter[int]]:
        # a small client pool: httpcore slows down badly with hundreds of waiting requests
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as client:

            async def call(k: str) -> int:
                r = await client.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {k}"})
                return r.status_code

            bad = asyncio.gather(*(call(k) for k in wrong))
            good = asyncio.gather(*(call(key) for _ in range(50)))
            return Counter(await bad), Counter(await good)

    bad, good = asyncio.run(flood())
    assert bad == Counter({401: 500})
    assert good == Counter({200: 50})
    failed = len(re.findall(r"key verification prefix=\S+ ok=False", gw.log()))
    # per worker: the throttle's threshold, plus the checks already admitted to a verify slot
    assert 0 < failed <= 2 * (FAILURES_PER_SOURCE + 2), failed


def test_logs_of_a_full_cycle_hold_no_key_and_no_hash(
    env: dict[str, str], replicas: tuple[Gateway, Gateway], database_url: str
) -> None:
    outputs = [cli(env, "create-tenant", "--name", "acme")]
    created = cli(env, "create-key", "--tenant", "acme", "--name", "k1")
    key = next(w for w in created.stdout.split() if w.startswith("nz_") and len(w) > 20)
    asyncio.run(_statuses(replicas[0].url, key, 5))
    asyncio.run(_statuses(replicas[0].url, key[:-1] + "x", 5))
    outputs += [
        cli(env, "list-keys", "--tenant", "acme"),
        cli(env, "list-keys", "--tenant", "acme", "--json"),
        cli(env, "usage", "--prefix", key[:11]),
        cli(env, "revoke-key", "--prefix", key[:11]),
    ]
    asyncio.run(_statuses(replicas[1].url, key, 5))
    stored_hash = asyncio.run(_stored_hash(database_url, key[:11]))
    texts = [gw.log() for gw in replicas] + [o.stdout + o.stderr for o in outputs]
    texts.append(created.stderr)
    for text in texts:
        assert key[11:] not in text
        assert stored_hash not in text
        assert "$argon2id$" not in text
    assert created.stdout.splitlines().count(key) == 1  # shown once, on its own line


async def _stored_hash(database_url: str, prefix: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        value: str = await conn.fetchval("SELECT key_hash FROM api_keys WHERE prefix=$1", prefix)
        return value
    finally:
        await conn.close()


def test_a_flood_from_one_address_does_not_stop_the_owner_after_a_restart(
    env: dict[str, str], replicas: tuple[Gateway, Gateway]
) -> None:
    gw = replicas[0]
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "k1")
    assert asyncio.run(_statuses(gw.url, key, 4)) == Counter({200: 4})
    gw.stop()
    gw.start()  # a freshly restarted server: no worker has proven the key yet
    wrong = [key[:11] + f"{i:040d}" for i in range(600)]

    async def client(address: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(
            local_address=address, limits=httpx.Limits(max_connections=16)
        )
        return httpx.AsyncClient(timeout=30, transport=transport)

    async def run() -> tuple[Counter[int], Counter[int]]:
        attacker, owner = await client("127.0.0.2"), await client("127.0.0.3")
        async with attacker, owner:

            async def call(c: httpx.AsyncClient, k: str) -> int:
                r = await c.get(gw.url + "/v1/usage", headers={"Authorization": f"Bearer {k}"})
                return r.status_code

            bad = asyncio.gather(*(call(attacker, k) for k in wrong))
            await asyncio.sleep(0.5)  # the flood is under way
            good = asyncio.gather(*(call(owner, key) for _ in range(20)))
            return Counter(await bad), Counter(await good)

    bad, good = asyncio.run(run())
    assert bad == Counter({401: 600}) and good == Counter({200: 20})
    failed = len(re.findall(r"key verification prefix=\S+ ok=False", gw.log()))
    assert 0 < failed <= 2 * (FAILURES_PER_SOURCE + 2), failed
