"""Stepped reservations: streams extend as tokens pass and stop, never overshooting, at a budget."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from limits import Ask, Extension, Limits, LimitsBackend, Subject, Ticket, Usage

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]


def stream(rid: str, prompt: int = 50, max_output: int | None = None) -> Ask:
    return Ask(request_id=rid, prompt_tokens=prompt, max_output=max_output, output="stream")


@dataclass
class Outcome:
    """What one simulated stream did."""

    used: int = 0  # what the backend generated (prompt included), as settled
    truncated: Extension | None = None  # the refused extension, if the budget stopped it
    admitted: bool = False


async def run_stream(
    backend: LimitsBackend, subject: Subject, rid: str, wants: int, rng: random.Random
) -> Outcome:
    """Admit (retrying while the budget is only held), pass tokens, extend, settle."""
    out = Outcome()
    for _ in range(10_000):  # bounded, so a failure cannot leave the others spinning
        a = await backend.admit(subject, stream(rid), now=NOW)
        if a.allowed or not a.should_retry:
            break
        await asyncio.sleep(0.001)
    if not a.allowed:
        assert a.limit == "daily_tokens" and not a.should_retry
        return out  # spent
    ticket = a.ticket
    assert ticket is not None and a.output_cap is not None
    assert ticket.output_reserved == min(512, a.output_cap)
    out.admitted = True
    passed = 0
    while passed < wants:
        chunk = min(rng.randint(1, 40), wants - passed)
        while passed + chunk > ticket.output_reserved:
            ext = await backend.extend(ticket, now=NOW)
            ticket = ext.ticket
            if ext.granted == 0:
                out.truncated = ext
                chunk = ticket.output_reserved - passed  # stop at the reservation
                break
        passed += chunk
        if out.truncated:
            break
        await asyncio.sleep(0)
    assert passed <= ticket.output_reserved
    out.used = ticket.prompt + passed
    assert await backend.settle(ticket, out.used, now=NOW)
    return out


@pytest.mark.parametrize("scope", ["key", "tenant"])
async def test_64_uncapped_streams_never_overshoot_a_budget(
    backend: LimitsBackend, make_subject: Make, scope: str
) -> None:
    budget = Limits(daily_tokens=10_000)
    if scope == "key":
        subjects = [make_subject(budget)]
    else:
        subjects = [make_subject(None, budget, key_id=f"k{i}") for i in range(3)]
    for s in subjects:
        await backend.seed(s, ZERO, ZERO, now=NOW)
    rng = random.Random(7)
    outcomes = await asyncio.gather(
        *(
            run_stream(backend, subjects[i % len(subjects)], f"r{i}", rng.randint(200, 3000), rng)
            for i in range(64)
        )
    )
    spent = sum(o.used for o in outcomes)
    assert 8_000 <= spent <= 10_000  # never over, at least 80% usable
    tenant, _ = await backend.usage(subjects[0], now=NOW)
    assert (tenant.day, tenant.reserved) == (spent, 0)
    assert sum(o.admitted for o in outcomes) > 16  # not one at a time
    stopped = [o.truncated for o in outcomes if o.truncated is not None]
    assert stopped and all(e.granted == 0 and not e.lapsed for e in stopped)
    # refused by the budget, or at the cap it gave at admission (its allowance then)
    by_budget = [e for e in stopped if e.limit is not None]
    assert by_budget and {(e.scope, e.limit) for e in by_budget} == {(scope, "daily_tokens")}
    assert all(e.ticket.output_reserved == e.ticket.output_cap for e in stopped if not e.limit)
    late = await backend.admit(subjects[-1], stream("late"), now=NOW)
    assert (late.limit, late.should_retry) == ("daily_tokens", False)


async def test_extension_grants_what_is_left_then_nothing(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(daily_tokens=10_000), Limits(monthly_tokens=1_300))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, stream("a", prompt=100), now=NOW)
    assert a.ticket is not None and a.output_cap == 1_200 and a.ticket.reserved == 612
    e1 = await backend.extend(a.ticket, now=NOW)
    assert e1.granted == 512 and e1.ticket.reserved == 1124 and e1.limit is None
    other = make_subject(None, Limits(monthly_tokens=1_300), key_id="other")
    b = await backend.admit(other, Ask("b", 0, 100, "single"), now=NOW)
    assert b.output_cap == 100
    e2 = await backend.extend(e1.ticket, 1000, now=NOW)  # asks 176: what the cap leaves
    assert (e2.granted, e2.scope, e2.limit) == (76, "tenant", "monthly_tokens")
    assert e2.ticket.reserved == 1_200
    e3 = await backend.extend(e2.ticket, now=NOW)
    assert (e3.granted, e3.ticket, e3.lapsed) == (0, e2.ticket, False)
    assert (e3.scope, e3.limit) == ("tenant", "monthly_tokens")
    tenant, key = await backend.usage(s, now=NOW)
    assert (tenant.reserved, key.reserved) == (1_300, 1_200)
    assert await backend.settle(e2.ticket, 700, now=NOW)
    assert (await backend.usage(s, now=NOW))[1] == Usage(700, 700, 700, 0)


async def test_extension_never_passes_the_output_cap(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(daily_tokens=100_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, stream("a", max_output=700), now=NOW)
    assert a.ticket is not None and a.ticket.stepped and a.output_cap == 700
    e = await backend.extend(a.ticket, 5000, now=NOW)
    assert e.granted == 188 and e.ticket.output_reserved == 700 and e.limit is None
    assert (await backend.extend(e.ticket, now=NOW)).granted == 0


async def test_a_settled_ticket_cannot_extend(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(daily_tokens=100_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    a = await backend.admit(s, stream("a"), now=NOW)
    assert a.ticket is not None
    await backend.settle(a.ticket, 100, now=NOW)
    e = await backend.extend(a.ticket, now=NOW)
    assert (e.granted, e.lapsed, e.ticket) == (0, True, a.ticket)
    assert (await backend.usage(s, now=NOW))[1] == Usage(100, 100, 100, 0)


async def test_extension_counts_in_the_current_tpm_second(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(tpm=2_000))
    a = await backend.admit(s, stream("a", prompt=88), now=NOW)  # 600 at NOW
    assert a.ticket is not None and a.ticket.stepped
    e = await backend.extend(a.ticket, 1_000, now=NOW + 30)  # 1000 at NOW + 30
    assert e.granted == 1_000
    b = await backend.admit(s, stream("b", prompt=400), now=NOW + 31)
    assert (b.limit, b.retry_after) == ("tokens", 29)  # room once NOW's 600 leave
    c = await backend.admit(s, stream("c", prompt=400), now=NOW + 60)
    assert c.allowed and c.output_cap == 2_000 - 1_000 - 400
    assert c.rate is not None and c.rate.reset_tokens == 30.0


@dataclass
class Sim:
    """Simulated streams on a clock: tokens are generated at 40 per second each."""

    backend: LimitsBackend
    subject: Subject
    rng: random.Random
    t: float = NOW
    timeline: dict[float, int] = field(default_factory=dict)  # time -> tokens generated
    active: list[tuple[Ticket, int, int]] = field(default_factory=list)  # ticket, passed, wants
    served: int = 0
    refused: int = 0

    def count(self, tokens: int) -> None:
        self.timeline[self.t] = self.timeline.get(self.t, 0) + tokens

    async def tick(self, n: int) -> None:
        a = await self.backend.admit(self.subject, stream(f"r{n}"), now=self.t)
        if a.ticket is not None:
            self.count(a.ticket.prompt)
            self.active.append((a.ticket, 0, self.rng.randint(50, 1500)))
        else:
            self.refused += 1
        still = []
        for ticket, passed, wants in self.active:
            chunk, stop = min(20, wants - passed), False
            if passed + chunk > ticket.output_reserved:
                ext = await self.backend.extend(ticket, now=self.t)
                ticket = ext.ticket
                if ext.granted == 0:
                    chunk, stop = ticket.output_reserved - passed, True
            passed += chunk
            self.count(chunk)
            if stop or passed >= wants:
                await self.backend.settle(ticket, ticket.prompt + passed, now=self.t)
                self.served += 1
            else:
                still.append((ticket, passed, wants))
        self.active = still
        self.t += 0.5


async def test_tpm_with_steps_holds_over_any_minute(
    backend: LimitsBackend, make_subject: Make
) -> None:
    sim = Sim(backend, make_subject(Limits(tpm=2_000)), random.Random(3))
    for n in range(600):  # 300 s
        await sim.tick(n)
    times = sorted(sim.timeline)
    worst = max(
        sum(v for t, v in sim.timeline.items() if start <= t < start + 60) for start in times
    )
    assert worst <= 2_000 + 512  # the limit plus one step
    total = sum(sim.timeline.values())
    assert total >= 0.8 * 2_000 * 5  # five minutes of it, most of it used
    assert sim.served > 10 and sim.refused > 0


async def test_big_tpm_never_refuses_uncapped_streams(
    backend: LimitsBackend, make_subject: Make
) -> None:
    s = make_subject(Limits(tpm=1_000_000_000))
    tickets: list[Any] = []
    for i in range(200):  # 200 concurrent uncapped streams
        a = await backend.admit(s, stream(f"r{i}"), now=NOW)
        assert a.allowed and a.ticket is not None and a.ticket.output_reserved == 512
        tickets.append(a.ticket)
    assert a.rate is not None and a.rate.remaining_tokens == 1_000_000_000 - 200 * 562


async def test_only_generations_extend(backend: LimitsBackend, make_subject: Make) -> None:
    s = make_subject(Limits(daily_tokens=100_000))
    await backend.seed(s, ZERO, ZERO, now=NOW)
    embed = await backend.admit(s, Ask("e", 100, None, "none"), now=NOW)
    single = await backend.admit(s, Ask("s", 100, 300, "single"), now=NOW)
    assert embed.ticket is not None and single.ticket is not None
    assert (await backend.extend(embed.ticket, now=NOW)).granted == 0
    assert (await backend.extend(single.ticket, now=NOW)).granted == 0  # at its cap
    with pytest.raises(ValueError):
        await backend.extend(single.ticket, 0, now=NOW)
    _, key = await backend.usage(s, now=NOW)
    assert key.reserved == 100 + 400
