"""The in-process queue and its writer (no Redis, SQLite): the embedded default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise import Tortoise

from config import Settings
from models import AuditEvent
from server.accounting.record import RequestRecord
from server.accounting.recorder import Recorder
from server.stores.database import database, migrate
from tests.server.accounting.test_writer import until


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[None]:
    settings = Settings(database_url=f"sqlite://{tmp_path / 'gateway.sqlite3'}")
    await migrate(settings)
    async with database(settings):
        yield
    await Tortoise.close_connections()


def refused(rid: str, **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": rid,
        "surface": "v1",
        "method": "GET",
        "path": "/v1/models",
        "status": 401,
        "time": datetime.now(UTC),
        **fields,
    }
    return RequestRecord(**values)  # type: ignore[arg-type]


async def test_records_are_written_and_a_refused_one_is_set_aside(sqlite: None) -> None:
    recorder = Recorder(postgres=False)
    recorder.writer.block = 0.05
    task = asyncio.create_task(recorder.run(0.05))
    try:
        recorder.record(refused("a", user_agent="\x00\ud800", path="/v1/" + "x" * 70000))
        recorder.record(refused("b", tenant_id=2**70))  # too large for an SQLite integer
        recorder.record(refused("c"))
        await until(lambda: _rows(2))
        await until(lambda: _backlog(recorder, 0))
    finally:
        task.cancel()
    odd = await AuditEvent.get(request_id="a")
    assert odd.user_agent == "\ufffd\ufffd" and len(odd.path) == 2048
    status = await recorder.status()
    assert status["dead_letters"] == 1
    ((_, why, data),) = recorder.source.dead
    assert why.startswith("refused by the database") and b'"request_id":"b"' in data


async def test_a_cancelled_writer_leaves_its_batch_to_flush(sqlite: None) -> None:
    recorder = Recorder(postgres=False)
    for n in range(5):
        recorder.record(refused(f"r{n}"))
    taken = recorder.queue.take(3)  # a writer took these, then was cancelled mid-batch
    assert len(taken) == 3 and len(recorder) == 5
    assert await recorder.flush()
    assert await AuditEvent.all().count() == 5 and len(recorder) == 0


async def test_flush_reports_an_unreachable_database_and_keeps_the_events() -> None:
    async with database(Settings(database_url="postgres://postgres@127.0.0.1:1/nowhere")):
        recorder = Recorder(postgres=True)
        recorder.record(refused("kept"))
        assert not await recorder.flush()
        assert len(recorder) == 1
    await Tortoise.close_connections()


async def _rows(expected: int) -> bool:
    return await AuditEvent.all().count() == expected


async def _backlog(recorder: Recorder, expected: int) -> bool:
    return (await recorder.status())["backlog"] == expected


async def test_past_its_bound_an_event_is_counted_lost_and_shown(sqlite: None) -> None:
    from server.accounting.event import encode_event

    one = len(encode_event(refused("size")))
    recorder = Recorder(postgres=False, max_bytes=3 * one + 10)
    kept = [recorder.append(encode_event(refused(f"b{n}"))) for n in range(5)]
    assert kept == [True, True, True, False, False]
    status = await recorder.status()
    assert status["lost"] == 2 and status["backlog"] == 3
    assert await recorder.flush()
    assert await AuditEvent.all().count() == 3
    assert recorder.append(encode_event(refused("again")))  # room again once written
