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

from limits import Ask, Limits, MemoryLimits, OutputKind, RedisLimits, Subject, Ticket, Usage
from tests.limits.conftest import read_events

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
BERLIN = ZoneInfo("Europe/Berlin")
Pair = tuple[MemoryLimits, RedisLimits, Redis, str]


@pytest_asyncio.fixture
async def pair(redis_url: str) -> AsyncIterator[Pair]:
    namespace = f"nzgw-test-{uuid.uuid4().hex}"
    client = Redis.from_url(redis_url)
    settings = {"tz": BERLIN, "lease_ttl": 45.0, "output_step": 64, "non_stream_cap": 300}
    yield (
        MemoryLimits(**settings),  # type: ignore[arg-type]
        RedisLimits(client, namespace=namespace, **settings),  # type: ignore[arg-type]
        client,
        namespace,
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


@pytest.mark.parametrize("seed", range(12))
async def test_same_answers(pair: Pair, seed: int) -> None:
    memory, redis, client, namespace = pair
    rng = random.Random(seed)
    tenant = random_limits(rng)
    subjects = [Subject("t", f"k{i}", tenant, random_limits(rng)) for i in range(3)] + [
        Subject("t", "plain", tenant, Limits())
    ]
    open_tickets: list[Ticket] = []
    done: list[Ticket] = []
    outcomes: set[str | None] = set()
    granted: set[bool] = set()
    now = NOW + rng.randint(0, 86400)
    for step in range(400):
        now += rng.choice(
            [0, 0, 0, 0.25, 0.5, 1, 7, 20, 40, 3600, 86400, -0.5, -3]
        )  # < 0: a clock going back
        action = rng.random()
        if action < 0.4:
            s = rng.choice(subjects)
            kind: OutputKind = rng.choice(["none", "single", "stream", "stream"])
            ask = Ask(f"r{step}", rng.randint(0, 200), rng.choice([None, 1, 50, 400, 5000]), kind)
            got = [await b.admit(s, ask, now=now) for b in (memory, redis)]
            assert got[0] == got[1], f"step {step}"  # tickets included
            outcomes.add("seed" if got[0].needs_seed else got[0].limit)
            if got[0].needs_seed:
                given = Usage(rng.randint(0, 500), rng.randint(500, 900), rng.randint(900, 2900))
                for b in (memory, redis):
                    await b.seed(s, given, replace(given, total=given.total + 5), now=now)
            elif got[0].ticket is not None:
                open_tickets.append(got[0].ticket)
        elif action < 0.6 and open_tickets:
            i = rng.randrange(len(open_tickets))
            tokens = rng.choice([None, 1, 30, 64, 500])
            ext = [await b.extend(open_tickets[i], tokens, now=now) for b in (memory, redis)]
            assert ext[0] == ext[1], f"step {step}"
            granted.add(ext[0].granted > 0)
            open_tickets[i] = ext[0].ticket
        elif action < 0.68 and open_tickets:
            ticket = rng.choice(open_tickets)
            got_r = [await b.refresh(ticket, now=now) for b in (memory, redis)]
            assert got_r[0] == got_r[1], f"step {step}"
        elif action < 0.9 and (open_tickets or done):
            if done and (not open_tickets or rng.random() < 0.15):
                ticket = rng.choice(done)  # a repeat: a no-op
            else:
                ticket = open_tickets.pop(rng.randrange(len(open_tickets)))
                done.append(ticket)
            used = rng.randint(0, ticket.reserved + 100)
            event = f"{ticket.request_id}:{used}".encode()
            got_s = [await b.settle(ticket, used, event=event, now=now) for b in (memory, redis)]
            assert got_s[0] == got_s[1], f"step {step}"
        elif action < 0.93:
            event = f"refused:{step}".encode()
            assert await memory.record(event, shard_key=f"r{step}")
            assert await redis.record(event, shard_key=f"r{step}")
        else:
            s = rng.choice(subjects)
            assert await memory.usage(s, now=now) == await redis.usage(s, now=now), f"step {step}"
    assert {None, "seed"} < outcomes and len(outcomes) >= 3  # admits, seeds and denials
    assert False in granted  # extensions refused (and, in most seeds, granted too)
    memory.events.take(10**6)
    mine = [e.data for e in memory.events.pending()]
    assert sorted(mine) == sorted(await read_events(client, namespace))
    assert len(set(mine)) == len(mine)  # no request settled twice
