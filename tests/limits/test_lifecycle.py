"""A request's life: heartbeats keep it open, a lapsed one is released, settle charges once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from limits import LAPSE_GRACE_S, Ask, Limits, Subject, Usage

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]


def stream(rid: str, prompt: int = 50) -> Ask:
    return Ask(request_id=rid, prompt_tokens=prompt, max_output=None, output="stream")


async def test_refresh_keeps_slot_and_reservation_past_the_ttl(
    harness: Any, make_subject: Make
) -> None:
    backend = harness.make(lease_ttl=3.0)
    tenant = Limits(daily_tokens=100_000)
    s = make_subject(Limits(max_concurrent=1), tenant)
    lone = make_subject(Limits(max_concurrent=1), tenant, key_id="lone")
    for subject in (s, lone):
        await backend.seed(subject, ZERO, ZERO, now=NOW)
    kept = await backend.admit(s, stream("kept"), now=NOW)
    dropped = await backend.admit(lone, stream("dropped"), now=NOW)
    assert kept.ticket is not None and dropped.ticket is not None
    t = NOW
    while t < NOW + 10:  # a 10 s stream, heartbeat every ttl / 3
        t += 1.0
        assert await backend.refresh(kept.ticket, now=t)
        second = await backend.admit(s, stream(f"second-{t}"), now=t + 0.5)
        assert (second.scope, second.limit) == ("key", "concurrency")
    _, key = await backend.usage(s, now=t)
    assert key.reserved == 562
    tenant_usage, lone_usage = await backend.usage(lone, now=t)
    assert lone_usage.reserved == 0 and tenant_usage.reserved == 562  # "dropped" lapsed
    assert not await backend.refresh(dropped.ticket, now=t)
    ext = await backend.extend(dropped.ticket, now=t)
    assert (ext.granted, ext.lapsed) == (0, True)
    assert (await backend.admit(lone, stream("next"), now=t)).allowed  # its slot is free


async def test_extension_renews_the_lease(harness: Any, make_subject: Make) -> None:
    backend = harness.make(lease_ttl=3.0)
    s = make_subject(Limits(max_concurrent=1, daily_tokens=100_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, stream("a"), now=NOW)
    assert a.ticket is not None
    ext = await backend.extend(a.ticket, now=NOW + 2.5)
    assert ext.granted == 512
    assert not (await backend.admit(s, stream("b"), now=NOW + 5)).allowed
    assert (await backend.admit(s, stream("c"), now=NOW + 5.5)).allowed


async def test_repeated_settle_is_a_no_op(backend: Any, make_subject: Make) -> None:
    s = make_subject(Limits(max_concurrent=2, daily_tokens=10_000, tpm=5_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, stream("a"), now=NOW)
    assert a.ticket is not None
    assert await backend.settle(a.ticket, 300, event=b"a", now=NOW + 1)
    for i in range(3):
        assert not await backend.settle(a.ticket, 300 + i, event=b"again", now=NOW + 2)
    tenant, key = await backend.usage(s, now=NOW + 2)
    assert key == tenant == Usage(300, 300, 300, 0)
    b = await backend.admit(s, stream("b"), now=NOW + 2)
    assert b.rate is not None and b.rate.remaining_tokens == 5_000 - 300 - 562
    c = await backend.admit(s, stream("c"), now=NOW + 2)
    d = await backend.admit(s, stream("d"), now=NOW + 2)
    assert c.allowed and not d.allowed  # the repeats freed no second slot


@pytest.mark.parametrize("purged", [True, False])
async def test_lapsed_reservation_is_charged_once(
    harness: Any, make_subject: Make, purged: bool
) -> None:
    backend = harness.make(lease_ttl=60.0)
    s = make_subject(Limits(daily_tokens=1_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    lost = await backend.admit(s, Ask("lost", 100, None, "single"), now=NOW)
    assert lost.ticket is not None and lost.output_cap == 900
    if purged:  # another admission releases it, keeping a tombstone
        assert (await backend.admit(s, stream("other", 10), now=NOW + 60)).allowed
    assert await backend.settle(lost.ticket, 400, event=b"lost", now=NOW + 61)
    assert not await backend.settle(lost.ticket, 400, event=b"lost", now=NOW + 62)
    _, key = await backend.usage(s, now=NOW + 62)
    assert key.day == 400 and key.reserved == (522 if purged else 0)
    assert await harness.events() == [b"lost"]


async def test_settle_long_after_the_lapse_charges_nothing(
    harness: Any, make_subject: Make
) -> None:
    backend = harness.make(lease_ttl=60.0)
    s = make_subject(Limits(total_tokens=100_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    lost = await backend.admit(s, Ask("lost", 100, 100, "single"), now=NOW)
    assert (await backend.admit(s, Ask("other", 1, 1, "single"), now=NOW + 60)).allowed
    late = NOW + 60 + LAPSE_GRACE_S
    assert lost.ticket is not None
    assert not await backend.settle(lost.ticket, 150, event=b"late", now=late)
    assert (await backend.usage(s, now=late))[1].total == 0
    assert await harness.events() == []


async def test_request_ids_in_flight_are_not_merged(backend: Any, make_subject: Make) -> None:
    s = make_subject(Limits(max_concurrent=5))
    assert (await backend.admit(s, stream("same"), now=NOW)).allowed
    with pytest.raises(ValueError, match="in flight"):
        await backend.admit(s, stream("same"), now=NOW)
    other_key = make_subject(Limits(max_concurrent=5), key_id="k2")
    with pytest.raises(ValueError, match="in flight"):
        await backend.admit(other_key, stream("same"), now=NOW)
    _, key = await backend.usage(s, now=NOW)
    tenant, key2 = await backend.usage(other_key, now=NOW)
    assert (key.reserved, key2.reserved, tenant.reserved) == (562, 0, 562)
