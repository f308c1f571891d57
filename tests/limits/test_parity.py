"""The memory backend and the Redis backend answer a random workload identically."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from limits import Ask, Limits, MemoryLimits, RedisLimits, Subject, Ticket, Usage

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
BERLIN = ZoneInfo("Europe/Berlin")


@pytest_asyncio.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[MemoryLimits, RedisLimits]]:
    namespace = f"nzgw-test-{uuid.uuid4().hex}"
    client = Redis.from_url(redis_url)
    yield (
        MemoryLimits(tz=BERLIN, lease_ttl=45.0, default_output_reserve=200),
        RedisLimits(
            client, namespace=namespace, tz=BERLIN, lease_ttl=45.0, default_output_reserve=200
        ),
    )
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def random_limits(rng: random.Random) -> Limits:
    def maybe(low: int, high: int) -> int | None:
        return rng.randint(low, high) if rng.random() < 0.5 else None

    return Limits(
        rpm=maybe(1, 8),
        tpm=maybe(200, 3000),
        max_concurrent=maybe(1, 4),
        daily_tokens=maybe(1000, 8000),
        monthly_tokens=maybe(5000, 40000),
        total_tokens=maybe(20000, 90000),
    )


@pytest.mark.parametrize("seed", range(8))
async def test_same_answers(pair: tuple[MemoryLimits, RedisLimits], seed: int) -> None:
    memory, redis = pair
    rng = random.Random(seed)
    tenant = random_limits(rng)
    subjects = [Subject("t", f"k{i}", tenant, random_limits(rng)) for i in range(3)] + [
        Subject("t", "plain", tenant, Limits())
    ]
    open_tickets: list[Ticket] = []
    outcomes: set[str | None] = set()
    now = NOW + rng.randint(0, 86400)
    for step in range(300):
        now += rng.choice([0, 0, 0.25, 1, 7, 40, 3600, 86400])
        action = rng.random()
        if action < 0.55:
            s = rng.choice(subjects)
            ask = Ask(f"r{step}", rng.randint(0, 200), rng.choice([None, 0, 50, 400, 5000]))
            got = [await b.admit(s, ask, now=now) for b in (memory, redis)]
            assert got[0] == got[1], f"step {step}"  # tickets included
            outcomes.add("seed" if got[0].needs_seed else got[0].limit)
            if got[0].needs_seed:
                given = Usage(rng.randint(0, 500), rng.randint(500, 900), rng.randint(900, 2900))
                for b in (memory, redis):
                    await b.seed(s, given, replace(given, total=given.total + 5), now=now)
            elif got[0].ticket is not None:
                open_tickets.append(got[0].ticket)
        elif action < 0.9 and open_tickets:
            ticket = open_tickets.pop(rng.randrange(len(open_tickets)))
            used = rng.randint(0, ticket.reserved + 100)
            for b in (memory, redis):
                await b.settle(ticket, used, now=now)
        else:
            s = rng.choice(subjects)
            assert await memory.usage(s, now=now) == await redis.usage(s, now=now), f"step {step}"
    assert {None, "seed"} < outcomes and len(outcomes) >= 4  # admits, seeds and several denials
