"""The audit queue: settle appends each request's event once, record() the refused ones; bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from limits import EVENT_SHARDS, Ask, KeySpace, Limits, MemoryLimits, Subject, Usage, shard_of

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]


def ask(rid: str) -> Ask:
    return Ask(request_id=rid, prompt_tokens=10, max_output=None, output="stream")


async def test_one_event_per_settled_request_and_per_record(
    harness: Any, make_subject: Make
) -> None:
    backend = harness.make()
    s = make_subject(Limits(daily_tokens=10**6, rpm=1000), Limits(max_concurrent=100))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    admitted = await asyncio.gather(*(backend.admit(s, ask(f"r{i}"), now=NOW) for i in range(50)))
    tickets = [a.ticket for a in admitted if a.ticket is not None]
    assert len(tickets) == 50
    results = await asyncio.gather(
        *(backend.settle(t, 20, event=f"ev-{t.request_id}".encode(), now=NOW) for t in tickets),
        *(backend.settle(t, 20, event=b"dup", now=NOW + 1) for t in tickets[:10]),
    )
    assert results == [True] * 50 + [False] * 10
    assert await backend.settle(tickets[0], 5, now=NOW + 2) is False  # no event either way
    for i in range(7):
        assert await backend.record(f"refused-{i}".encode(), shard_key=f"req-{i}")
    events = await harness.events()
    assert sorted(events) == sorted(
        [f"ev-r{i}".encode() for i in range(50)] + [f"refused-{i}".encode() for i in range(7)]
    )
    assert await harness.queued_bytes() == sum(len(e) for e in events)
    _, key = await backend.usage(s, now=NOW + 2)
    assert key.day == 50 * 20


async def test_settle_without_event_appends_nothing(harness: Any, make_subject: Make) -> None:
    backend = harness.make()
    s = make_subject()
    a = await backend.admit(s, ask("a"), now=NOW)
    assert a.ticket is not None and await backend.settle(a.ticket, 5, now=NOW)
    assert await harness.events() == [] and await harness.queued_bytes() == 0


async def test_queue_over_its_bound_refuses_fail_closed(harness: Any, make_subject: Make) -> None:
    # 16 streams share the bound in Redis: 1600 bytes in all, 100 per shard
    backend = harness.make(events_max_bytes=1600)
    bound = 1600 if harness.kind == "memory" else 1600 // EVENT_SHARDS
    s = make_subject(Limits(rpm=10**6))
    event = b"x" * 40
    settled = 0
    while True:
        a = await backend.admit(s, ask(f"r{settled}"), now=NOW)
        if not a.allowed:
            break
        assert a.ticket is not None
        await backend.settle(a.ticket, 1, event=event, now=NOW)
        settled += 1
    assert settled * 40 > bound >= (settled - 1) * 40  # refused once over, not before
    assert (a.limit, a.scope, a.should_retry, a.retry_after) == ("audit_queue", None, True, 1)
    assert a.ticket is None and not a.needs_seed
    assert not await backend.record(b"refused", shard_key=s.tenant_id)
    assert len(await harness.events()) == settled
    # the writer acknowledges what it wrote: room again
    if isinstance(backend, MemoryLimits):
        backend.events.ack(e.id for e in backend.events.pending())
    else:
        client = harness.client()
        try:
            stream = KeySpace(harness.namespace).events(shard_of(s.tenant_id))
            await client.decrby(stream.bytes, settled * 40)
        finally:
            await client.aclose()
    assert (await backend.admit(s, ask("after"), now=NOW)).allowed
    assert await backend.record(b"refused", shard_key=s.tenant_id)


async def test_a_full_shard_does_not_stop_other_shards(
    redis_harness: Any, make_subject: Make
) -> None:
    backend = redis_harness.make(events_max_bytes=16 * 10)  # Redis: 10 bytes per shard
    full = make_subject(tenant_id="t1")
    other_id = next(f"t{i}" for i in range(2, 100) if shard_of(f"t{i}") != shard_of("t1"))
    other = make_subject(tenant_id=other_id)
    a = await backend.admit(full, ask("a"), now=NOW)
    assert a.ticket is not None
    await backend.settle(a.ticket, 1, event=b"y" * 11, now=NOW)
    assert (await backend.admit(full, ask("b"), now=NOW)).limit == "audit_queue"
    assert (await backend.admit(other, ask("c"), now=NOW)).allowed


async def test_memory_queue_take_ack_and_wait() -> None:
    backend = MemoryLimits()
    queue = backend.events
    assert not await queue.wait(0.01)
    waiter = asyncio.create_task(queue.wait(5))
    await asyncio.sleep(0)
    assert await backend.record(b"one", shard_key="x")
    assert await waiter
    await backend.record(b"two", shard_key="y")
    batch = queue.take(1)
    assert [e.data for e in batch] == [b"one"] and len(queue) == 2
    assert queue.size_bytes == 6
    assert [e.data for e in queue.take(10)] == [b"two"]
    assert queue.ack([batch[0].id, 999]) == 1
    assert [e.data for e in queue.pending()] == [b"two"] and queue.size_bytes == 3
