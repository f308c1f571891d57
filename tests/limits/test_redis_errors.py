"""The Redis backend fails closed and survives a script cache flush."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from limits import Ask, Limits, LimitsUnavailable, MemoryLimits, RedisLimits, Subject, Usage
from limits.pipe import ScriptPipe

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
S = Subject("t1", "k1", Limits(daily_tokens=100), Limits(rpm=5))


@pytest_asyncio.fixture
async def unreachable() -> AsyncIterator[RedisLimits]:
    # redis-py 8 retries a refused connection 10 times with backoff by default (seconds);
    # a gateway that fails closed wants few or no retries, as here
    client = Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    backend = RedisLimits(client)
    yield backend
    await backend.close()


async def test_unreachable_redis_raises(unreachable: RedisLimits) -> None:
    with pytest.raises(LimitsUnavailable):
        await unreachable.ping()
    with pytest.raises(LimitsUnavailable) as info:
        await unreachable.admit(S, Ask("a", 10, None, "stream"), now=NOW)
    assert info.value.__cause__ is not None
    with pytest.raises(LimitsUnavailable):
        await unreachable.seed(S, Usage(0, 0, 0), Usage(0, 0, 0))
    with pytest.raises(LimitsUnavailable):
        await unreachable.usage(S)
    memory, big = MemoryLimits(), Subject("t1", "k1", Limits(daily_tokens=10**6), Limits())
    await memory.seed(big, Usage(0, 0, 0), Usage(0, 0, 0))
    ticket = (await memory.admit(big, Ask("a", 10, None, "stream"))).ticket
    assert ticket is not None and ticket.stepped
    with pytest.raises(LimitsUnavailable):
        await unreachable.extend(ticket)
    with pytest.raises(LimitsUnavailable):
        await unreachable.refresh(ticket)
    with pytest.raises(LimitsUnavailable):
        await unreachable.settle(ticket, 5, event=b"e")
    with pytest.raises(LimitsUnavailable):
        await unreachable.record(b"e", shard_key="t1")


async def test_script_flush_is_survived(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    namespace = f"nzgw-test-{uuid.uuid4().hex}"
    backend = RedisLimits(client, namespace=namespace)
    try:
        await backend.ping()
        subject = Subject("t-flush", "k", Limits(), Limits(rpm=1000))
        assert (await backend.admit(subject, Ask("a", 1, None, "single"))).allowed
        await client.script_flush()
        admitted = await backend.admit(subject, Ask("b", 1, None, "single"))  # NOSCRIPT: reload
        assert admitted.ticket is not None
        await backend.settle(admitted.ticket, 2)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await backend.close()


async def test_one_round_trip_per_call(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    namespace = f"nzgw-test-{uuid.uuid4().hex}"
    backend = RedisLimits(client, namespace=namespace)
    sent: list[object] = []
    original: Callable[..., Awaitable[object]] = client.execute_command

    async def counting(*args: object, **kwargs: object) -> object:
        sent.append(args[0])
        return await original(*args, **kwargs)

    pipe_execute = ScriptPipe.execute

    async def counting_pipe(pipe: ScriptPipe, *args: object) -> object:
        sent.append(args[0])
        return await pipe_execute(pipe, *args)

    # script calls go through the backend's ScriptPipe (one plain-TCP server), else redis-py
    monkeypatch.setattr(client, "execute_command", counting)
    monkeypatch.setattr(ScriptPipe, "execute", counting_pipe)
    try:
        subject = Subject("t-rt", "k", Limits(rpm=100, daily_tokens=10**6), Limits(tpm=10**6))
        await backend.seed(subject, Usage(0, 0, 0), Usage(0, 0, 0))
        warm = await backend.admit(subject, Ask("warm", 1, None, "stream"))  # loads the scripts
        assert warm.ticket is not None
        await backend.refresh(warm.ticket)
        await backend.extend(warm.ticket)
        await backend.settle(warm.ticket, 1, event=b"e")
        await backend.record(b"e", shard_key="x")
        sent.clear()
        admitted = await backend.admit(subject, Ask("a", 10, None, "stream"))
        assert admitted.ticket is not None and admitted.ticket.stepped
        assert sent == ["EVALSHA"]
        assert await backend.refresh(admitted.ticket)
        extended = await backend.extend(admitted.ticket, 100)
        assert extended.granted == 100
        assert await backend.settle(extended.ticket, 15, event=b"event")
        assert await backend.record(b"refused", shard_key="some-request-id")
        assert sent == ["EVALSHA"] * 5
    finally:
        monkeypatch.undo()
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await backend.close()
