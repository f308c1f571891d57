"""The usage ledger sums: a key or a whole tenant, for a day, its calendar month and all time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from tortoise import Tortoise

from config import Settings
from models import ApiKey, Tenant, UsageDaily
from server.accounting.ledger import (
    LedgerUsage,
    UsageRow,
    UsageTotals,
    ledger_usage,
    month_bounds,
    overall,
    per_group,
    usage_by,
)
from server.stores.database import database


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[None]:
    async with database(settings):
        yield
    # server.stores.database.close_db() leaves Tortoise's global context set, so a second database() in
    # this process would fail; Tortoise.close_connections() clears it.
    await Tortoise.close_connections()


async def _key(tenant: Tenant, name: str) -> ApiKey:
    return await ApiKey.create(tenant=tenant, name=name, prefix=f"nz_{name:0<8}", key_hash="x")


async def _use(
    key: ApiKey, day: date, requests: int, prompt: int, completion: int, model: str = ""
) -> None:
    await UsageDaily.create(
        tenant_id=key.tenant_id,
        key=key,
        day=day,
        model=model,
        requests=requests,
        prompt_tokens=prompt,
        completion_tokens=completion,
    )


def test_month_bounds() -> None:
    assert month_bounds(date(2026, 11, 26)) == (date(2026, 11, 1), date(2026, 12, 1))
    assert month_bounds(date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert month_bounds(date(2028, 2, 29)) == (date(2028, 2, 1), date(2028, 3, 1))
    assert month_bounds(date(2026, 1, 1)) == (date(2026, 1, 1), date(2026, 2, 1))


async def test_empty_ledger_is_zero(db: None) -> None:
    tenant = await Tenant.create(name="acme")
    key = await _key(tenant, "a")
    today = date(2026, 11, 26)
    zero = LedgerUsage(today, UsageTotals(), UsageTotals(), UsageTotals())
    assert await ledger_usage(tenant_id=tenant.id, key_id=key.id, today=today) == zero
    assert await ledger_usage(tenant_id=tenant.id, key_id=None, today=today) == zero


async def test_day_month_total_for_key_and_tenant(db: None) -> None:
    acme, other = await Tenant.create(name="acme"), await Tenant.create(name="other")
    a, b, c = await _key(acme, "a"), await _key(acme, "b"), await _key(other, "c")
    today = date(2026, 11, 30)
    await _use(a, today, 3, 100, 50)
    await _use(a, date(2026, 11, 1), 1, 10, 5)  # same month
    await _use(a, date(2026, 10, 31), 7, 1000, 1)  # previous month
    await _use(a, date(2026, 12, 1), 2, 20000, 0)  # next month (a clock ahead): total only
    await _use(b, today, 1, 1, 1)
    await _use(b, date(2025, 11, 30), 1, 4, 4)  # same month a year ago
    await _use(c, today, 99, 9999, 9999)  # another tenant

    used = await ledger_usage(tenant_id=acme.id, key_id=a.id, today=today)
    assert used.day == UsageTotals(3, 100, 50)
    assert used.month == UsageTotals(4, 110, 55)
    assert used.total == UsageTotals(13, 21110, 56)
    assert (used.day_tokens, used.month_tokens, used.total_tokens) == (150, 165, 21166)

    whole = await ledger_usage(tenant_id=acme.id, key_id=None, today=today)
    assert whole.day == UsageTotals(4, 101, 51)
    assert whole.month == UsageTotals(5, 111, 56)
    assert whole.total == UsageTotals(15, 21115, 61)
    assert whole.today == today

    # a key of another tenant is never counted under this tenant
    assert (await ledger_usage(tenant_id=acme.id, key_id=c.id, today=today)).total_tokens == 0

    next_day = await ledger_usage(tenant_id=acme.id, key_id=a.id, today=date(2026, 12, 1))
    assert next_day.day == next_day.month == UsageTotals(2, 20000, 0)


async def test_large_values_stay_exact(db: None) -> None:
    tenant = await Tenant.create(name="big")
    key = await _key(tenant, "a")
    today = date(2026, 11, 26)
    huge = 3_000_000_000_000  # beyond 32 bits, summed as exact integers
    await _use(key, today, 1, huge, huge + 1)
    await _use(key, date(2026, 11, 25), 1, huge, 0)
    used = await ledger_usage(tenant_id=tenant.id, key_id=key.id, today=today)
    assert used.month_tokens == 3 * huge + 1
    assert isinstance(used.month.prompt_tokens, int)


async def test_breakdowns_by_day_month_and_model_per_key(db: None) -> None:
    acme, other = await Tenant.create(name="acme"), await Tenant.create(name="other")
    a, b, c = await _key(acme, "a"), await _key(acme, "b"), await _key(other, "c")
    await _use(a, date(2026, 10, 31), 1, 10, 1, "llama3.2")
    await _use(a, date(2026, 11, 1), 2, 20, 2, "llama3.2")
    await _use(a, date(2026, 11, 1), 1, 5, 0, "all-minilm")
    await _use(b, date(2026, 11, 1), 4, 400, 40, "qwen2.5")
    await _use(b, date(2026, 11, 2), 1, 1, 1, "")
    await _use(c, date(2026, 11, 1), 9, 9, 9, "llama3.2")  # another tenant

    days = await usage_by(tenant_id=acme.id, key_id=None, by="day")
    assert [(r.group, r.key_id, r.totals) for r in days] == [
        ("2026-10-31", a.id, UsageTotals(1, 10, 1)),
        ("2026-11-01", a.id, UsageTotals(3, 25, 2)),
        ("2026-11-01", b.id, UsageTotals(4, 400, 40)),
        ("2026-11-02", b.id, UsageTotals(1, 1, 1)),
    ]
    assert per_group(days)[1] == ("2026-11-01", UsageTotals(7, 425, 42))
    assert overall(days) == UsageTotals(9, 436, 44)

    months = await usage_by(tenant_id=acme.id, key_id=a.id, by="month")
    assert months == [
        UsageRow("2026-10", a.id, UsageTotals(1, 10, 1)),
        UsageRow("2026-11", a.id, UsageTotals(3, 25, 2)),
    ]
    models = await usage_by(tenant_id=acme.id, key_id=None, by="model", since=date(2026, 11, 1))
    assert [(r.group, r.key_id) for r in models] == [
        ("qwen2.5", b.id),
        ("llama3.2", a.id),
        ("all-minilm", a.id),
        ("", b.id),
    ]
    window = await usage_by(
        tenant_id=acme.id, key_id=None, by="day", since=date(2026, 11, 1), until=date(2026, 11, 1)
    )
    assert {r.group for r in window} == {"2026-11-01"}
