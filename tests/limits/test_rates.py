"""Requests and tokens per rolling minute, against every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from limits import Ask, Limits, LimitsBackend, Subject

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0  # 2026-11-18, injected so nothing sleeps
Make = Callable[..., Subject]


def ask(rid: str, prompt: int = 10, max_output: int | None = None) -> Ask:
    return Ask(request_id=rid, prompt_tokens=prompt, max_output=max_output, output="single")


async def test_rpm_100_parallel_exactly_30(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(rpm=30))
    results = await asyncio.gather(*(backend.admit(s, ask(f"r{i}"), now=NOW) for i in range(100)))
    allowed = [r for r in results if r.allowed]
    denied = [r for r in results if not r.allowed]
    assert len(allowed) == 30
    assert all(r.limit == "requests" and r.scope == "key" and r.should_retry for r in denied)
    assert all(r.retry_after == 60 and r.ticket is None for r in denied)
    assert all(r.output_cap is None and r.ticket is not None for r in allowed)


async def test_tenant_rpm_shared_by_two_keys(backend: LimitsBackend, make_subject: Make) -> None:
    subjects = [make_subject(None, Limits(rpm=30), key_id=k) for k in ("k1", "k2")]
    results = await asyncio.gather(
        *(backend.admit(subjects[i % 2], ask(f"r{i}"), now=NOW) for i in range(100))
    )
    assert sum(r.allowed for r in results) == 30
    assert {(r.scope, r.limit) for r in results if not r.allowed} == {("tenant", "requests")}


async def test_key_rpm_checked_before_tenant_rpm(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(rpm=1), Limits(rpm=1))
    assert (await backend.admit(s, ask("a"), now=NOW)).allowed
    denied = await backend.admit(s, ask("b"), now=NOW)
    assert (denied.scope, denied.limit) == ("key", "requests")


async def test_rpm_window_rolls(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(rpm=2))
    assert (await backend.admit(s, ask("a"), now=NOW)).allowed
    assert (await backend.admit(s, ask("b"), now=NOW + 20)).allowed
    denied = await backend.admit(s, ask("c"), now=NOW + 30)
    assert not denied.allowed and denied.retry_after == 30  # "a" leaves at NOW + 60
    assert (await backend.admit(s, ask("d"), now=NOW + 60)).allowed
    assert not (await backend.admit(s, ask("e"), now=NOW + 61)).allowed
    assert (await backend.admit(s, ask("f"), now=NOW + 80)).allowed


async def test_rpm_rate_info_tightest_scope(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(rpm=10), Limits(rpm=5))
    first = await backend.admit(s, ask("a"), now=NOW)
    assert first.rate is not None
    assert (first.rate.limit_requests, first.rate.remaining_requests) == (5, 4)
    assert first.rate.reset_requests == 60.0
    assert first.rate.limit_tokens is None and first.rate.remaining_tokens is None
    second = await backend.admit(s, ask("b"), now=NOW + 15)
    assert second.rate is not None
    assert second.rate.remaining_requests == 3 and second.rate.reset_requests == 45.0


async def test_tpm_reserves_and_denies(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(tpm=1000))
    results = await asyncio.gather(
        *(backend.admit(s, ask(f"r{i}", prompt=100, max_output=100), now=NOW) for i in range(100))
    )
    allowed = [r for r in results if r.allowed]
    assert len(allowed) == 5  # 5 x (100 prompt + 100 output) = 1000
    assert all(r.output_cap == 100 for r in allowed)
    assert {(r.scope, r.limit) for r in results if not r.allowed} == {("key", "tokens")}
    last = allowed[-1].rate
    assert last is not None and last.limit_tokens == 1000
    assert min(r.rate.remaining_tokens or 0 for r in allowed if r.rate) == 0


async def test_tpm_settle_corrects_reservation(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(tpm=1000))
    tickets = []
    for i in range(5):
        a = await backend.admit(s, ask(f"r{i}", prompt=100, max_output=100), now=NOW + i)
        assert a.ticket is not None
        tickets.append(a.ticket)
    assert not (await backend.admit(s, ask("x", prompt=100), now=NOW + 5)).allowed
    for t in tickets:
        await backend.settle(t, 120, now=NOW + 6)  # 5 x 80 tokens given back
    a = await backend.admit(s, ask("y", prompt=100), now=NOW + 7)
    assert a.allowed and a.output_cap == 1000 - 600 - 100
    assert a.rate is not None and a.rate.remaining_tokens == 0


async def test_tpm_settle_above_reservation_counts(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(tpm=1000))
    a = await backend.admit(s, ask("a", prompt=100, max_output=100), now=NOW)
    assert a.ticket is not None
    await backend.settle(a.ticket, 700, now=NOW + 1)
    b = await backend.admit(s, ask("b", prompt=100), now=NOW + 2)
    assert b.allowed and b.output_cap == 200


async def test_tpm_window_rolls_and_retry_after(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(tpm=300))
    assert (await backend.admit(s, ask("a", prompt=100, max_output=50), now=NOW)).allowed
    assert (await backend.admit(s, ask("b", prompt=100, max_output=50), now=NOW + 10)).allowed
    denied = await backend.admit(s, ask("c", prompt=100, max_output=50), now=NOW + 20)
    assert denied.limit == "tokens" and denied.should_retry
    assert denied.retry_after == 40  # the tokens of "a" leave the minute at NOW + 60
    assert denied.rate is not None and denied.rate.remaining_tokens == 0
    assert (await backend.admit(s, ask("d", prompt=100, max_output=50), now=NOW + 60)).allowed


async def test_tpm_caps_output_at_allowance(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(tpm=1000), Limits(tpm=800))
    a = await backend.admit(s, ask("a", prompt=100), now=NOW)
    assert a.allowed and a.output_cap == 700  # tenant: 800 - 100
    b = await backend.admit(s, ask("b", prompt=100, max_output=5000), now=NOW)
    assert not b.allowed and (b.scope, b.limit) == ("tenant", "tokens")


async def test_unlimited_subject(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject()
    for i in range(50):
        cap = None if i % 2 else 64
        a = await backend.admit(s, ask(f"r{i}", max_output=cap), now=NOW)
        assert a.allowed and not a.needs_seed and a.rate is None
        assert a.output_cap == cap  # the client's own cap, nothing of the gateway's
        assert a.ticket is not None
        await backend.settle(a.ticket, 20, now=NOW)
    tenant, key = await backend.usage(s, now=NOW)
    assert tenant.total == key.total == 50 * 20
