"""Budget counters are trusted only once seeded from the ledger, and survive a lost Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from limits import Ask, Limits, LimitsBackend, Subject, Usage

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]


def ask(rid: str, prompt: int = 50, max_output: int | None = 10) -> Ask:
    return Ask(request_id=rid, prompt_tokens=prompt, max_output=max_output, output="single")


async def test_needs_seed_reserves_nothing(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(rpm=5, daily_tokens=1000))
    a = await backend.admit(s, ask("a"), now=NOW)
    assert not a.allowed and a.needs_seed and a.ticket is None and a.limit is None
    assert a.retry_after >= 1
    assert await backend.usage(s, now=NOW) == (ZERO, ZERO)
    await backend.seed(s, ZERO, ZERO, now=NOW)
    for i in range(5):  # the unseeded attempt took no rpm slot
        assert (await backend.admit(s, ask(f"r{i}"), now=NOW)).allowed


async def test_tenant_budget_needs_tenant_seed(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(None, Limits(monthly_tokens=1000))
    assert (await backend.admit(s, ask("a"), now=NOW)).needs_seed
    await backend.seed(s, Usage(10, 20, 30), ZERO, now=NOW)
    assert (await backend.admit(s, ask("b"), now=NOW)).allowed
    other_key = make_subject(None, Limits(monthly_tokens=1000), key_id="k2")
    assert (await backend.admit(other_key, ask("c"), now=NOW)).allowed  # key has no budget


async def test_rate_only_subject_needs_no_seed(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(rpm=5, tpm=1000, max_concurrent=2))
    assert (await backend.admit(s, ask("a"), now=NOW)).allowed


async def test_lost_counters_rebuilt_from_ledger(harness: Any, make_subject: Make) -> None:
    backend = harness.make()
    s = make_subject(Limits(daily_tokens=1000), Limits(daily_tokens=5000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, ask("a", prompt=100, max_output=None), now=NOW)
    assert a.ticket is not None
    await backend.settle(a.ticket, 900, now=NOW)
    ledger = await backend.usage(s, now=NOW)

    await harness.wipe()  # Redis restarted without persistence
    lost = await backend.admit(s, ask("b", prompt=100), now=NOW)
    assert lost.needs_seed and not lost.allowed
    await backend.seed(s, *ledger, now=NOW)
    assert await backend.usage(s, now=NOW) == ledger
    after = await backend.admit(s, ask("c", prompt=100), now=NOW)
    assert (after.scope, after.limit) == ("key", "daily_tokens")  # not silently reset


async def test_seed_keeps_larger_existing_counters(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(total_tokens=10_000))
    unlimited = make_subject()
    a = await backend.admit(unlimited, ask("a"), now=NOW)  # counted though no budget applied
    assert a.ticket is not None
    await backend.settle(a.ticket, 700, now=NOW)
    await backend.seed(s, Usage(500, 500, 500), Usage(500, 500, 9000), now=NOW)
    tenant, key = await backend.usage(s, now=NOW)
    assert tenant == Usage(700, 700, 700) and key == Usage(700, 700, 9000)


async def test_concurrent_seeds_do_not_double_count(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(daily_tokens=10_000))
    given = [Usage(100 * i, 100 * i, 100 * i) for i in range(1, 11)]
    await asyncio.gather(*(backend.seed(s, u, u, now=NOW) for u in given))
    tenant, key = await backend.usage(s, now=NOW)
    assert tenant == key and tenant in given  # exactly one seeder won
    a = await backend.admit(s, ask("a"), now=NOW)
    assert a.ticket is not None
    await backend.settle(a.ticket, 1000, now=NOW)
    await backend.seed(s, ZERO, Usage(5, 5, 5), now=NOW)  # late seeder: ignored
    assert (await backend.usage(s, now=NOW))[1].day == tenant.day + 1000
