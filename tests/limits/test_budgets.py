"""Daily, monthly and total token budgets: reservations, output caps, windows in a time zone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from limits import Admission, Ask, Limits, LimitsBackend, OutputKind, Subject, Usage

pytestmark = pytest.mark.asyncio
UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]


def ask(rid: str, prompt: int = 50, max_output: int | None = None) -> Ask:
    return Ask(request_id=rid, prompt_tokens=prompt, max_output=max_output, output="single")


async def spend_all_in_parallel(
    backend: LimitsBackend, subjects: list[Subject], now: float, n: int = 64
) -> list[Admission]:
    """n parallel non-streamed admits (prompt 50, no cap), settled with used = reserved."""
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
    assert getattr(key, field) == reserved <= 10_000 and key.reserved == 0
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
    backend = harness.make(non_stream_cap=300)
    s = make_subject(Limits(daily_tokens=1000), Limits(monthly_tokens=10_000))
    await backend.seed(s, Usage(0, 4500, 4500), ZERO, now=NOW)
    a = await backend.admit(s, ask("a", prompt=100), now=NOW)
    assert a.output_cap == 300 and a.ticket.reserved == 400  # non_stream_cap < allowance
    b = await backend.admit(s, ask("b", prompt=100, max_output=50), now=NOW)
    assert b.output_cap == 50 and b.ticket.reserved == 150  # the client's own cap
    c = await backend.admit(s, ask("c", prompt=100, max_output=5000), now=NOW)
    assert c.output_cap == 1000 - 550 - 100  # key day: 1000 - 550 reserved - prompt
    d = await backend.admit(s, ask("d", prompt=10), now=NOW)
    assert (d.scope, d.limit) == ("key", "daily_tokens")
    tenant, key = await backend.usage(s, now=NOW)
    assert (key.day, key.reserved) == (0, 1000)
    assert (tenant.month, tenant.reserved) == (4500, 1000)


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
    a = await backend.admit(s, ask("a", prompt=50), now=NOW)  # no cap: all that is left
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
    assert await backend.settle(a.ticket, 150, now=NOW + 1)
    for _ in range(2):
        assert not await backend.settle(a.ticket, 150, now=NOW + 1)
    tenant, key = await backend.usage(s, now=NOW + 1)
    assert (key.day, key.month, key.total) == (150, 150, 150) and tenant.day == 150
    b = await backend.admit(s, ask("b", prompt=100), now=NOW + 2)
    assert b.output_cap == 4096  # non_stream_cap, below the 5000 - 150 - 100 left
    assert b.rate is not None and b.rate.remaining_tokens == 5000 - 150 - 100 - 4096


async def test_crashed_worker_reservation_expires(harness: Any, make_subject: Make) -> None:
    backend = harness.make(lease_ttl=60.0)
    s = make_subject(Limits(daily_tokens=1000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    lost = await backend.admit(s, ask("lost", prompt=100), now=NOW)
    assert lost.output_cap == 900
    assert not (await backend.admit(s, ask("b", prompt=10), now=NOW + 59)).allowed
    _, key = await backend.usage(s, now=NOW + 59)
    assert (key.day, key.reserved) == (0, 1000)
    again = await backend.admit(s, ask("c", prompt=10), now=NOW + 60)
    assert again.allowed and again.output_cap == 990
    # a late settle of the lapsed request still charges its usage, once
    assert lost.ticket is not None
    assert await backend.settle(lost.ticket, 400, now=NOW + 61)
    assert not await backend.settle(lost.ticket, 400, now=NOW + 62)
    _, key = await backend.usage(s, now=NOW + 62)
    assert (key.day, key.reserved) == (400, 1000)  # 400 settled, 1000 reserved by "c"


async def test_100_parallel_exactly_the_budget(backend: LimitsBackend, make_subject: Make) -> None:
    subjects = [make_subject(None, Limits(daily_tokens=1000), key_id=f"k{i}") for i in range(3)]
    for s in subjects:
        await backend.seed(s, ZERO, ZERO, now=NOW)
    results = await asyncio.gather(
        *(
            backend.admit(subjects[i % 3], ask(f"r{i}", prompt=50, max_output=50), now=NOW)
            for i in range(100)
        )
    )
    assert sum(r.allowed for r in results) == 10  # 10 x (50 + 50) = 1000
    assert {(r.scope, r.limit, r.should_retry) for r in results if not r.allowed} == {
        ("tenant", "daily_tokens", True)  # held by the 10 in flight
    }
    tenant, _ = await backend.usage(subjects[0], now=NOW)
    assert (tenant.day, tenant.reserved) == (0, 1000)


@pytest.mark.parametrize(
    ("output", "max_output", "cap", "reserved", "stepped"),
    [
        ("none", None, None, 100, False),  # embeddings: the prompt only
        ("none", 50, None, 100, False),
        ("single", None, 4096, 100 + 4096, False),  # NON_STREAM_OUTPUT_CAP
        ("single", 300, 300, 400, False),
        ("single", 9900, 9800, 9900, False),  # allowance: 10_000 - 100 held - 100 prompt
        ("stream", None, 9800, 100 + 512, True),  # cap = allowance, one step reserved
        ("stream", 2000, 2000, 100 + 512, True),
        ("stream", 300, 300, 400, False),  # the cap is below one step: nothing to extend
    ],
)
async def test_what_each_output_kind_reserves(
    backend: LimitsBackend,
    make_subject: Make,
    output: Any,
    max_output: int | None,
    cap: int | None,
    reserved: int,
    stepped: bool,
) -> None:
    s = make_subject(Limits(daily_tokens=10_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    other = await backend.admit(s, Ask("other", 50, 50, "single"), now=NOW)  # holds 100
    assert other.allowed
    a = await backend.admit(s, Ask("a", 100, max_output, output), now=NOW)
    assert a.ticket is not None
    assert (a.output_cap, a.ticket.reserved, a.ticket.stepped) == (cap, reserved, stepped)
    assert a.ticket.output_reserved == reserved - 100
    _, key = await backend.usage(s, now=NOW)
    assert key.reserved == 100 + reserved


@pytest.mark.parametrize(
    ("output", "max_output", "cap", "reserved"),
    [
        ("none", None, None, 100),
        ("single", None, None, 100 + 512),  # no token limit: no cap; usage shows one step
        ("single", 300, 300, 400),
        ("stream", None, None, 100 + 512),
        ("stream", 2000, 2000, 100 + 512),
    ],
)
async def test_without_token_limits_nothing_is_capped_or_stepped(
    backend: LimitsBackend,
    make_subject: Make,
    output: Any,
    max_output: int | None,
    cap: int | None,
    reserved: int,
) -> None:
    s = make_subject(Limits(rpm=100, max_concurrent=5))
    a = await backend.admit(s, Ask("a", 100, max_output, output), now=NOW)
    assert a.ticket is not None and not a.ticket.stepped
    assert (a.output_cap, a.ticket.reserved) == (cap, reserved)
    tenant, key = await backend.usage(s, now=NOW)
    assert key.reserved == tenant.reserved == reserved


async def test_embeddings_admitted_beside_an_uncapped_stream(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(None, Limits(daily_tokens=5_000_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    stream = await backend.admit(s, Ask("chat", 200, None, "stream"), now=NOW)
    assert stream.ticket is not None and stream.ticket.reserved == 200 + 512
    for i in range(40):
        kinds: tuple[OutputKind, ...] = ("none", "single", "stream")
        kind = kinds[i % 3]
        a = await backend.admit(s, Ask(f"r{i}", 100, None if i % 2 else 64, kind), now=NOW)
        assert a.allowed, (i, a)


async def test_prompt_only_request_fits_exactly(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(daily_tokens=1000))
    await backend.seed(s, ZERO, Usage(900, 900, 900), now=NOW)
    assert not (await backend.admit(s, Ask("gen", 100, None, "single"), now=NOW)).allowed
    a = await backend.admit(s, Ask("embed", 100, None, "none"), now=NOW)
    assert a.allowed and a.output_cap is None
    zero = await backend.admit(s, Ask("meta", 0, None, "none"), now=NOW)
    assert zero.allowed  # costs nothing: a spent budget does not refuse it
    spent = await backend.admit(s, Ask("embed2", 1, None, "none"), now=NOW)
    assert (spent.limit, spent.should_retry) == ("daily_tokens", True)  # 100 held by "embed"
