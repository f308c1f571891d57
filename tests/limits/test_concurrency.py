"""Concurrency leases: a slot per request, freed by settle or by its TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from limits import Ask, Limits, LimitsBackend, Subject

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
Make = Callable[..., Subject]


def ask(rid: str) -> Ask:
    return Ask(request_id=rid, prompt_tokens=10, max_output=None, output="stream")


async def test_fourth_request_waits_for_a_slot(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(max_concurrent=3))
    admitted = [await backend.admit(s, ask(f"r{i}"), now=NOW) for i in range(3)]
    assert all(a.allowed for a in admitted)
    fourth = await backend.admit(s, ask("r3"), now=NOW)
    assert not fourth.allowed
    assert (fourth.scope, fourth.limit, fourth.should_retry, fourth.retry_after) == (
        "key",
        "concurrency",
        True,
        1,
    )
    ticket = admitted[1].ticket
    assert ticket is not None
    await backend.settle(ticket, 15, now=NOW + 1)
    assert (await backend.admit(s, ask("r4"), now=NOW + 1)).allowed
    assert not (await backend.admit(s, ask("r5"), now=NOW + 1)).allowed


async def test_100_parallel_exactly_max_concurrent(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(max_concurrent=20), Limits(max_concurrent=7))
    results = await asyncio.gather(*(backend.admit(s, ask(f"r{i}"), now=NOW) for i in range(100)))
    assert sum(r.allowed for r in results) == 7
    assert {(r.scope, r.limit) for r in results if not r.allowed} == {("tenant", "concurrency")}


async def test_unsettled_lease_expires_after_ttl(harness: Any, make_subject: Make) -> None:
    backend = harness.make(lease_ttl=30.0)
    s = make_subject(Limits(max_concurrent=1))
    assert (await backend.admit(s, ask("crashed"), now=NOW)).allowed
    assert not (await backend.admit(s, ask("b"), now=NOW + 29.9)).allowed
    assert (await backend.admit(s, ask("c"), now=NOW + 30)).allowed


async def test_settle_twice_frees_one_slot(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(max_concurrent=2))
    a = await backend.admit(s, ask("a"), now=NOW)
    assert a.ticket is not None
    assert (await backend.admit(s, ask("b"), now=NOW)).allowed
    await backend.settle(a.ticket, 10, now=NOW + 1)
    await backend.settle(a.ticket, 10, now=NOW + 2)
    assert (await backend.admit(s, ask("c"), now=NOW + 2)).allowed
    assert not (await backend.admit(s, ask("d"), now=NOW + 2)).allowed
