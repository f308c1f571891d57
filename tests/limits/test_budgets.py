"""Daily, monthly and total token budgets: reservations, output caps, windows in a time zone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from limits import Admission, Ask, Limits, LimitsBackend, Subject, Usage

pytestmark = pytest.mark.asyncio
UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]


def ask(rid: str, prompt: int = 50, max_output: int | None = None) -> Ask:
    return Ask(request_id=rid, prompt_tokens=prompt, max_output=max_output)


async def spend_all_in_parallel(
    backend: LimitsBackend, subjects: list[Subject], now: float, n: int = 64
) -> list[Admission]:
    """n parallel admits (prompt 50, no cap), each settled with used = reserved (worst case)."""
    results = await asyncio.gather(
        *(backend.admit(subjects[i % len(subjects)], ask(f"r{i}"), now=now) for i in range(n))
    )
    await asyncio.gather(
        *(backend.settle(r.ticket, r.ticket.reserved, now=now) for r in results if r.ticket)
    )
    return results


@pytest.mark.parametrize(
    ("limits", "field", "name", "retry_after"),
    [
        # retry_after as seen one second after NOW (2026-11-26 12:00 UTC)
        (Limits(daily_tokens=10_000), "day", "daily_tokens", 12 * 3600 - 1),
        (Limits(monthly_tokens=10_000), "month", "monthly_tokens", (4 * 24 + 12) * 3600 - 1),
        (Limits(total_tokens=10_000), "total", "total_tokens", 365 * 86400),
    ],
)
async def test_budget_never_overspent(
    backend: LimitsBackend,
    make_subject: Make,
    limits: Limits,
    field: str,
    name: str,
    retry_after: int,
) -> None:
    s = make_subject(limits)
    await backend.seed(s, ZERO, ZERO, now=NOW)
    results = await spend_all_in_parallel(backend, [s], NOW)
    reserved = sum(r.ticket.reserved for r in results if r.ticket)
    assert 0 < reserved <= 10_000
    assert all(r.output_cap is not None and r.output_cap > 0 for r in results if r.allowed)
    tenant, key = await backend.usage(s, now=NOW)
    assert getattr(key, field) == reserved <= 10_000
    assert getattr(tenant, field) == reserved
    denied = await backend.admit(s, ask("next"), now=NOW + 1)
    assert not denied.allowed and denied.ticket is None
    assert (denied.scope, denied.limit, denied.should_retry) == ("key", name, False)
    assert denied.retry_after == retry_after
    if name == "daily_tokens":
        assert (await backend.admit(s, ask("tomorrow"), now=NOW + 12 * 3600)).allowed
    if name == "monthly_tokens":
        assert (await backend.admit(s, ask("december"), now=NOW + 1 + retry_after)).allowed
    if name == "total_tokens":
        assert not (await backend.admit(s, ask("later"), now=NOW + 400 * 86400)).allowed


async def test_tenant_budget_across_keys(backend: LimitsBackend, make_subject: Make) -> None:
    tenant = Limits(daily_tokens=10_000)
    subjects = [make_subject(None, tenant, key_id=f"k{i}") for i in range(4)]
    for s in subjects:
        await backend.seed(s, ZERO, ZERO, now=NOW)
    results = await spend_all_in_parallel(backend, subjects, NOW)
    tenant_usage, _ = await backend.usage(subjects[0], now=NOW)
    assert tenant_usage.day == sum(r.ticket.reserved for r in results if r.ticket) <= 10_000
    denied = await backend.admit(subjects[3], ask("next"), now=NOW)
    assert (denied.scope, denied.limit) == ("tenant", "daily_tokens")


async def test_reservation_caps_output(harness: Any, make_subject: Make) -> None:
    backend = harness.make(default_output_reserve=300)
    s = make_subject(Limits(daily_tokens=1000), Limits(monthly_tokens=10_000))
    await backend.seed(s, Usage(0, 4500, 4500), ZERO, now=NOW)
    a = await backend.admit(s, ask("a", prompt=100), now=NOW)
    assert a.output_cap == 300 and a.ticket.reserved == 400  # default reserve < allowance
    b = await backend.admit(s, ask("b", prompt=100, max_output=50), now=NOW)
    assert b.output_cap == 50 and b.ticket.reserved == 150  # the client's own cap
    c = await backend.admit(s, ask("c", prompt=100, max_output=5000), now=NOW)
    assert c.output_cap == 1000 - 550 - 100  # key day: 1000 - 550 reserved - prompt
    d = await backend.admit(s, ask("d", prompt=10), now=NOW)
    assert (d.scope, d.limit) == ("key", "daily_tokens")
    tenant, key = await backend.usage(s, now=NOW)
    assert key.day == 1000 and tenant.month == 4500 + 1000


async def test_monthly_checked_against_tenant_allowance(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(daily_tokens=1000), Limits(monthly_tokens=5000))
    await backend.seed(s, Usage(0, 4800, 4800), ZERO, now=NOW)
    a = await backend.admit(s, ask("a", prompt=100), now=NOW)
    assert a.allowed and a.output_cap == 100  # tenant month: 5000 - 4800 - 100
    b = await backend.admit(s, ask("b", prompt=1), now=NOW)
    # the rest of the month is held by "a", still in flight: worth a retry in a second
    assert (b.scope, b.limit, b.should_retry, b.retry_after) == (
        "tenant",
        "monthly_tokens",
        True,
        1,
    )
    assert a.ticket is not None
    await backend.settle(a.ticket, 200, now=NOW)
    c = await backend.admit(s, ask("c", prompt=1), now=NOW)
    assert (c.scope, c.limit, c.should_retry) == ("tenant", "monthly_tokens", False)


async def test_budget_held_in_flight_is_retryable_and_frees_on_settle(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(daily_tokens=1000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, ask("a", prompt=50), now=NOW)  # no cap: reserves all 1000
    assert a.allowed and a.output_cap == 950 and a.ticket is not None
    held = await backend.admit(s, ask("b", prompt=50), now=NOW)
    assert (held.limit, held.should_retry, held.retry_after) == ("daily_tokens", True, 1)
    await backend.settle(a.ticket, 300, now=NOW)
    b = await backend.admit(s, ask("b2", prompt=50), now=NOW)
    assert b.allowed and b.output_cap == 650 and b.ticket is not None
    await backend.settle(b.ticket, 700, now=NOW)
    spent = await backend.admit(s, ask("c", prompt=1), now=NOW)
    assert (spent.limit, spent.should_retry) == ("daily_tokens", False)
    assert spent.retry_after > 1


async def test_time_zone_sets_midnight(harness: Any, make_subject: Make) -> None:
    late = datetime(2026, 11, 26, 22, 30, tzinfo=UTC).timestamp()  # 23:30 in Berlin
    for tz, retry_after, next_day_open in ((UTC, 5400, False), (BERLIN, 1800, True)):
        backend = harness.make(tz=tz)
        s = make_subject(Limits(daily_tokens=100), key_id=f"k-{tz.key}")
        await backend.seed(s, ZERO, ZERO, now=late)
        a = await backend.admit(s, ask("a", prompt=50), now=late)
        assert a.ticket is not None
        await backend.settle(a.ticket, 100, now=late)
        denied = await backend.admit(s, ask("b"), now=late)
        assert denied.limit == "daily_tokens" and denied.retry_after == retry_after
        after_berlin_midnight = late + 1800
        opened = await backend.admit(s, ask("c"), now=after_berlin_midnight)
        assert opened.allowed is next_day_open


async def test_settle_is_idempotent(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(daily_tokens=10_000, tpm=5000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, ask("a", prompt=100, max_output=100), now=NOW)
    assert a.ticket is not None
    for _ in range(3):
        await backend.settle(a.ticket, 150, now=NOW + 1)
    tenant, key = await backend.usage(s, now=NOW + 1)
    assert (key.day, key.month, key.total) == (150, 150, 150) and tenant.day == 150
    b = await backend.admit(s, ask("b", prompt=100), now=NOW + 2)
    assert b.rate is not None and b.rate.remaining_tokens == 0
    assert b.output_cap == 5000 - 150 - 100


async def test_crashed_worker_reservation_expires(harness: Any, make_subject: Make) -> None:
    backend = harness.make(lease_ttl=60.0)
    s = make_subject(Limits(daily_tokens=1000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    lost = await backend.admit(s, ask("lost", prompt=100), now=NOW)
    assert lost.output_cap == 900
    assert not (await backend.admit(s, ask("b", prompt=10), now=NOW + 59)).allowed
    _, key = await backend.usage(s, now=NOW + 59)
    assert key.day == 1000
    again = await backend.admit(s, ask("c", prompt=10), now=NOW + 60)
    assert again.allowed and again.output_cap == 990
    # a late settle of the lapsed request still charges its usage, once
    assert lost.ticket is not None
    await backend.settle(lost.ticket, 400, now=NOW + 61)
    await backend.settle(lost.ticket, 400, now=NOW + 62)
    _, key = await backend.usage(s, now=NOW + 62)
    assert key.day == 1000 + 400  # 1000 reserved by "c" + 400 settled
