"""Storing audit batches: idempotent on the request id, the ledger and prompt logs once per event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from tortoise import Tortoise, connections

from config import Settings
from models import ApiKey, AuditEvent, PromptLog, Tenant, UsageDaily
from server.accounting.record import PromptRecord, RequestRecord
from server.accounting.store import StoreUnavailable, store
from server.stores.database import database, migrate

DAY = "2026-11-30"


@pytest.fixture(params=["postgres", "sqlite"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The test's PostgreSQL database, or a fresh migrated SQLite file."""
    if request.param == "postgres":
        settings: Settings = request.getfixturevalue("settings")
        return settings
    sqlite = Settings(database_url=f"sqlite://{tmp_path / 'gateway.sqlite3'}")
    asyncio.run(migrate(sqlite))
    return sqlite


@pytest.fixture
async def key(db_settings: Settings) -> AsyncIterator[ApiKey]:
    async with database(db_settings):
        tenant = await Tenant.create(name="acme")
        yield await ApiKey.create(tenant=tenant, name="k", prefix="nz_abcdefgh", key_hash="x")
    await Tortoise.close_connections()


def is_pg(key: ApiKey) -> bool:
    """Whether the key lives in PostgreSQL (else SQLite)."""
    return bool(connections.get("default").capabilities.dialect == "postgres")


def rec(rid: str, key: ApiKey, model: str = "llama3.2", **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": rid,
        "surface": "api",
        "method": "POST",
        "path": "/api/chat",
        "status": 200,
        "time": datetime(2026, 11, 30, 12, tzinfo=UTC),
        "tenant_id": key.tenant_id,
        "key_id": key.id,
        "key_prefix": key.prefix,
        "model": model,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "usage_day": DAY,
        **fields,
    }
    return RequestRecord(**values)  # type: ignore[arg-type]


async def test_a_batch_delivered_twice_is_stored_and_counted_once(key: ApiKey) -> None:
    prompt = PromptRecord('{"q": 1}', "answer", 7)
    batch = [rec("a", key), rec("b", key, prompt=prompt), rec("c", key, model="qwen2.5")]
    first = await store(batch, postgres=is_pg(key))
    assert (first.inserted, first.duplicates, first.rejected) == (3, 0, [])
    again = await store([*batch, rec("d", key), rec("d", key)], postgres=is_pg(key))
    assert (again.inserted, again.duplicates, again.rejected) == (1, 4, [])
    assert await AuditEvent.all().count() == 4
    assert await PromptLog.all().values_list("request_id", flat=True) == ["b"]
    ledger = {
        (row.model, row.day): (row.requests, row.prompt_tokens, row.completion_tokens)
        for row in await UsageDaily.all()
    }
    assert ledger == {
        ("llama3.2", date(2026, 11, 30)): (3, 30, 15),
        ("qwen2.5", date(2026, 11, 30)): (1, 10, 5),
    }


async def test_a_row_the_database_refuses_does_not_hold_back_the_rest(key: ApiKey) -> None:
    batch = [rec("a", key), rec("bad", key, tenant_id=2**70), rec("c", key)]
    result = await store(batch, postgres=is_pg(key))
    assert result.inserted == 2 and result.duplicates == 0
    ((index, why),) = result.rejected
    assert index == 1 and why and "\n" not in why
    assert sorted(await AuditEvent.all().values_list("request_id", flat=True)) == ["a", "c"]
    (row,) = await UsageDaily.all()
    assert row.requests == 2  # the refused row added nothing to the ledger
    again = await store(batch, postgres=is_pg(key))
    assert (again.inserted, again.duplicates, [i for i, _ in again.rejected]) == (0, 2, [1])


async def test_an_unreachable_database_raises_and_stores_nothing() -> None:
    async with database(Settings(database_url="postgres://postgres@127.0.0.1:1/nowhere")):
        tenant_less = RequestRecord(
            request_id="x",
            surface="api",
            method="GET",
            path="/",
            status=401,
            time=datetime.now(UTC),
        )
        with pytest.raises(StoreUnavailable):
            await store([tenant_less], postgres=True)
    await Tortoise.close_connections()
