"""The audit writer against real Redis streams and PostgreSQL: once, never lost, never stuck."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tortoise import Tortoise

from config import Settings
from models import ApiKey, AuditEvent, PromptLog, UsageDaily
from server.accounting.queue import GROUP, StreamSource, read_dead_letters
from server.accounting.source import Entry
from server.accounting.writer import Writer
from server.stores.database import database
from tests.proxy import Proxy
from tests.server.accounting.conftest import Streams, event

FAST = {"block": 0.1, "gather": 0.0, "retry_min": 0.05, "retry_max": 0.2, "linger": 0.2}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it holds; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running(writer: Writer) -> AsyncIterator[asyncio.Task[None]]:
    """Run the writer as a task; stop it (gracefully) on the way out."""
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        writer.stop(grace=5.0)
        await asyncio.wait_for(task, 10)


def source(streams: Streams, **kwargs: float) -> StreamSource:
    return StreamSource(streams.redis, streams.namespace, **kwargs)


async def rows() -> int:
    return await AuditEvent.all().count()


async def test_every_shard_is_written_acknowledged_and_freed(streams: Streams, key: ApiKey) -> None:
    for n in range(40):
        await streams.append(event(f"r{n}", key), shard=n % 16)
    writer = Writer(source(streams), postgres=True, **FAST)
    async with running(writer):
        await until(lambda: _is(rows, 40))
        await until(lambda: _status_is(writer, backlog=0))
    assert await streams.lengths() == [0] * 16  # acknowledged entries are deleted
    assert await streams.counters() == [0] * 16  # and their bytes freed
    assert await streams.pending() == 0
    (ledger,) = await UsageDaily.all()
    assert (ledger.requests, ledger.prompt_tokens, ledger.completion_tokens) == (40, 400, 200)
    assert writer.stats.written == 40 and writer.stats.dead_letters == 0


async def test_an_event_delivered_twice_is_one_row_counted_once(
    streams: Streams, key: ApiKey
) -> None:
    data = event("twice", key)
    await streams.append(data, shard=3)
    await streams.append(data, shard=3)  # appended twice
    flaky = FailingAck(source(streams))  # and the first batch's acknowledgement is lost
    writer = Writer(flaky, postgres=True, **FAST)
    async with running(writer):
        await until(lambda: _status_is(writer, backlog=0))
    assert flaky.failed == 1
    assert await AuditEvent.filter(request_id="twice").count() == 1
    (ledger,) = await UsageDaily.all()
    assert (ledger.requests, ledger.prompt_tokens) == (1, 10)
    assert writer.stats.written == 1 and writer.stats.duplicates >= 2
    assert await streams.counters() == [0] * 16


class FailingAck(StreamSource):
    """A stream source whose first acknowledgement fails after the batch committed."""

    def __init__(self, inner: StreamSource) -> None:
        self.__dict__.update(inner.__dict__)
        self.failed = 0

    async def ack(self, entries: Sequence[Entry]) -> None:
        if not self.failed:
            self.failed += 1
            raise ConnectionError("lost on the way to Redis")
        await super().ack(entries)


async def test_poison_rows_are_stored_sanitised_and_refused_rows_set_aside(
    streams: Streams, key: ApiKey
) -> None:
    good = event("good", key)
    poison = (
        event("poison", key, path="/api/" + "p" * 65536, user_agent="UA", model="MODEL")
        .replace(b'"UA"', b'"nul \\u0000 and bytes \xff\xfe"')
        .replace(b'"MODEL"', b'"\\ud800"')
    )
    refused = event("refused", key, tenant_id=2**40)  # out of the column's range
    await streams.append(good, 1)
    await streams.append(poison, 1)
    await streams.append(refused, 2)
    await streams.append(b"\x00 not an event", 2)
    await streams.append(event("after", key), 2)
    writer = Writer(source(streams), postgres=True, **FAST)
    async with running(writer):
        await until(lambda: _status_is(writer, backlog=0, dead_letters=2))
    stored = {e.request_id: e for e in await AuditEvent.all()}
    assert sorted(stored) == ["after", "good", "poison"]
    odd = stored["poison"]
    assert odd.user_agent == "nul \ufffd and bytes \ufffd\ufffd" and odd.model == "\ufffd"
    assert len(odd.path) == 2048 and odd.path.endswith("…")
    letters = await read_dead_letters(streams.redis, streams.namespace)
    assert [json.loads(d.data)["request_id"] for d in letters if d.data.startswith(b"{")] == [
        "refused"
    ]
    whys = sorted(d.why for d in letters)
    assert whys[0].startswith("not an audit event: not JSON")
    assert whys[1].startswith("refused by the database: ")
    assert all(d.origin for d in letters)
    assert await streams.counters() == [0] * 16 and await streams.pending() == 0
    assert writer.stats.dead_letters == 2


async def test_postgres_down_entries_stay_pending_and_arrive_once_it_is_back(
    streams: Streams, settings: Settings
) -> None:
    target = urlsplit(settings.database_url)
    with Proxy(target.port or 5432) as proxy:
        proxy.cut()  # PostgreSQL is unreachable from the start
        via_proxy = settings.database_url.replace(target.netloc, f"postgres@127.0.0.1:{proxy.port}")
        async with database(Settings(database_url=via_proxy)):
            for n in range(30):
                await streams.append(event(f"down{n}"), shard=n % 4)
            writer = Writer(source(streams), postgres=True, batch=10, **FAST)
            async with running(writer):
                await until(lambda: _retried(writer, 3))
                assert writer.stats.down_since is not None
                assert "database unavailable" in (writer.stats.last_error or "")
                assert sum(await streams.lengths()) == 30 and await streams.pending() > 0
                status = await writer.status()
                assert status["backlog"] == 30 and status["bytes"] == sum(
                    len(event(f"down{n}")) for n in range(30)
                )
                proxy.resume()  # PostgreSQL is back
                await until(lambda: _status_is(writer, backlog=0), timeout=20)
                assert writer.stats.down_since is None
                # and goes away again in the middle of the run
                for n in range(30, 40):
                    await streams.append(event(f"down{n}"), shard=n % 4)
                proxy.cut()
                before = writer.stats.retries
                await until(lambda: _retried(writer, before + 2))
                proxy.resume()
                await until(lambda: _status_is(writer, backlog=0), timeout=20)
            ids = await AuditEvent.all().values_list("request_id", flat=True)
        await Tortoise.close_connections()
    assert sorted(ids) == sorted(f"down{n}" for n in range(40))  # all of them, none twice


async def test_entries_left_pending_by_a_dead_consumer_are_claimed(
    streams: Streams, key: ApiKey
) -> None:
    dead = source(streams, consumer="dead-one")
    await dead.prepare()
    for n in range(12):
        await streams.append(event(f"orphan{n}", key), shard=n % 3)
    taken = await dead.take(100, 0)
    assert len(taken) == 12 and await streams.pending() == 12  # read, then the process died
    writer = Writer(source(streams, claim_idle=0.3, claim_every=0.1), postgres=True, **FAST)
    async with running(writer):
        await until(lambda: _is(rows, 12))
        await until(lambda: _status_is(writer, backlog=0))
    assert await streams.pending() == 0 and await streams.counters() == [0] * 16
    (ledger,) = await UsageDaily.all()
    assert ledger.requests == 12


async def test_a_retrying_writer_keeps_its_entries_from_being_claimed(
    streams: Streams, key: ApiKey
) -> None:
    slow = source(streams, consumer="slow-one")
    await slow.prepare()
    await streams.append(event("mine", key))
    taken = await slow.take(10, 0)
    await asyncio.sleep(0.4)
    await slow.touch(taken)  # what a writer retrying its batch does
    other = source(streams, claim_idle=0.3, claim_every=0.0)
    assert await other.take(10, 0) == []  # idle reset: not claimed
    await asyncio.sleep(0.4)
    assert [e.id for e in await other.take(10, 0)] == [taken[0].id]  # idle again: claimed


async def test_a_graceful_stop_drains_the_queue(streams: Streams, key: ApiKey) -> None:
    writer = Writer(source(streams), postgres=True, **FAST)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.2)
    for n in range(25):
        await streams.append(event(f"late{n}", key), shard=n % 16)
    writer.stop(grace=5.0)
    await asyncio.wait_for(task, 10)
    assert await rows() == 25 and sum(await streams.lengths()) == 0


async def test_the_writer_purges_expired_prompt_logs_now_and_then(
    streams: Streams, key: ApiKey
) -> None:
    old = datetime.now(UTC) - timedelta(days=1)
    await PromptLog.create(
        request_id="x", key_id=key.id, request_body="{}", response_text="t", expires_at=old
    )
    writer = Writer(source(streams), postgres=True, purge_every=0.1, **FAST)
    async with running(writer):
        await until(lambda: _is(lambda: PromptLog.all().count(), 0))


async def test_consumers_of_past_processes_are_forgotten(streams: Streams, key: ApiKey) -> None:
    past = source(streams, consumer="past-one")
    await past.prepare()
    await past.take(10, 0)  # joins the group (on every stream), holds nothing
    await asyncio.sleep(0.3)
    current = source(streams, claim_every=0.0, forget_idle=0.2)
    current._next_forget = 0.0
    await current.take(10, 0)
    names = {
        c["name"] for c in await streams.redis.xinfo_consumers(streams.shards[0].stream, GROUP)
    }
    assert b"past-one" not in names


async def _is(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() == expected


async def _status_is(writer: Writer, **expected: int) -> bool:
    status = await writer.status()
    return all(status[name] == value for name, value in expected.items())


async def _retried(writer: Writer, times: int) -> bool:
    return writer.stats.retries >= times


async def test_a_flush_stops_at_its_time_and_leaves_the_rest_queued(
    streams: Streams, key: ApiKey
) -> None:
    for n in range(30):
        await streams.append(event(f"f{n}", key), shard=n % 2)
    writer = Writer(source(streams), postgres=True, batch=10, **FAST)
    await writer.source.prepare()  # the group a running writer made
    assert await writer.flush(within=0.0) is False  # out of time before the first batch
    assert await rows() == 0 and await streams.pending() == 0  # nothing taken and left hanging
    assert await writer.flush(within=30.0) is True
    assert await rows() == 30 and sum(await streams.lengths()) == 0
