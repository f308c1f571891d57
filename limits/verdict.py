"""Turn the verdicts of the Lua scripts (and of their Python twin) into Admissions and Tickets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import get_args
from zoneinfo import ZoneInfo

from limits.policy import (
    Admission,
    Ask,
    Extension,
    LimitName,
    Limits,
    RateInfo,
    ScopeName,
    Subject,
    Ticket,
)
from limits.windows import TOTAL_RETRY_AFTER_S, seconds_to_next_day, seconds_to_next_month

# The admission verdict is a list of 14 integers, -1 meaning "none":
#   [code, scope, limit, retry_ms, output_cap, reserved, now_ms, stepped,
#    rpm_limit, rpm_remaining, rpm_reset_ms, tpm_limit, tpm_remaining, tpm_reset_ms]
# code 1 admitted, 0 denied, 2 needs seed; scope 1 key, 2 tenant; limit 1..7 in LIMIT_NAMES
# order, the first six also being the order of a scope's limits in admit.lua's ARGV.
ADMITTED, DENIED, NEEDS_SEED = 1, 0, 2
LIMIT_NAMES: tuple[LimitName, ...] = get_args(LimitName)
SCOPE_NAMES: tuple[ScopeName, ...] = get_args(ScopeName)
BUDGETS: frozenset[LimitName] = frozenset({"daily_tokens", "monthly_tokens", "total_tokens"})
NO_RATE = [-1, -1, -1, -1, -1, -1]  # the verdict's rate part when no rate limit applies


def limit_args(limits: Limits) -> list[int]:
    """The six limits of one scope as integers, -1 for unlimited, in ``LIMIT_NAMES`` order."""
    values = (
        limits.rpm,
        limits.tpm,
        limits.max_concurrent,
        limits.daily_tokens,
        limits.monthly_tokens,
        limits.total_tokens,
    )
    return [-1 if v is None else v for v in values]


def token_limit_args(limits: Limits) -> list[int]:
    """tpm, daily, monthly, total of one scope (-1 unlimited): what extend checks."""
    full = limit_args(limits)
    return [full[1], full[3], full[4], full[5]]


def _opt(value: int) -> int | None:
    return None if value < 0 else value


def _seconds(ms: int) -> float | None:
    return None if ms < 0 else ms / 1000.0


def _retry_after(limit: LimitName, retry_ms: int, now: float, tz: ZoneInfo) -> int:
    if limit in BUDGETS and retry_ms > 0:  # held by requests in flight, not spent
        return max(1, math.ceil(retry_ms / 1000))
    if limit == "daily_tokens":
        return seconds_to_next_day(now, tz)
    if limit == "monthly_tokens":
        return seconds_to_next_month(now, tz)
    if limit == "total_tokens":
        return TOTAL_RETRY_AFTER_S
    return max(1, math.ceil(retry_ms / 1000))


def _rate(raw: Sequence[int]) -> RateInfo | None:
    if raw[0] < 0 and raw[3] < 0:
        return None
    return RateInfo(
        limit_requests=_opt(raw[0]),
        remaining_requests=_opt(raw[1]),
        reset_requests=_seconds(raw[2]),
        limit_tokens=_opt(raw[3]),
        remaining_tokens=_opt(raw[4]),
        reset_tokens=_seconds(raw[5]),
    )


def to_admission(
    raw: Sequence[int],
    subject: Subject,
    ask: Ask,
    *,
    day: str,
    month: str,
    now: float,
    tz: ZoneInfo,
) -> Admission:
    """Build the Admission for ``raw``; ``now`` (seconds) is the clock the budget windows used."""
    code, scope, limit, retry_ms, cap, reserved, now_ms, stepped = (int(v) for v in raw[:8])
    if code == NEEDS_SEED:
        return Admission(allowed=False, retry_after=1, needs_seed=True)
    rate = _rate([int(v) for v in raw[8:14]])
    if code == DENIED:
        name = LIMIT_NAMES[limit - 1]
        return Admission(
            allowed=False,
            scope=SCOPE_NAMES[scope - 1] if scope > 0 else None,
            limit=name,
            retry_after=_retry_after(name, retry_ms, now, tz),
            should_retry=name not in BUDGETS or retry_ms > 0,
            rate=rate,
        )
    ticket = Ticket(
        request_id=ask.request_id,
        subject=subject,
        output=ask.output,
        day=day,
        month=month,
        prompt=ask.prompt_tokens,
        output_cap=_opt(cap),
        stepped=bool(stepped),
        reserved=reserved,
        at_ms=now_ms,
        first=reserved,
        last_ms=-1,
        last=0,
    )
    return Admission(allowed=True, output_cap=ticket.output_cap, ticket=ticket, rate=rate)


def wanted(ticket: Ticket, tokens: int | None, step: int) -> int:
    """How many tokens an extension may ask for: ``tokens`` (default one step), within the cap."""
    want = step if tokens is None else tokens
    if want < 1:
        raise ValueError("tokens must be >= 1")
    if ticket.output == "none":
        return 0  # a prompt-only request has no output to reserve
    if ticket.output_cap is not None:
        want = min(want, ticket.output_cap - ticket.output_reserved)
    return max(want, 0)


def to_extension(ticket: Ticket, want: int, raw: Sequence[int]) -> Extension:
    """Build the Extension for extend.lua's ``[granted, now_ms, scope, limit]``."""
    granted, now_ms, scope, limit = (int(v) for v in raw[:4])
    if granted < 0:
        return Extension(granted=0, ticket=ticket, lapsed=True)
    new = ticket
    if granted > 0:
        same = ticket.last_ms >= 0 and ticket.last_ms // 1000 == now_ms // 1000
        new = replace(
            ticket,
            reserved=ticket.reserved + granted,
            last_ms=now_ms,
            last=ticket.last + granted if same else granted,
        )
    short = granted < want and scope > 0
    return Extension(
        granted=granted,
        ticket=new,
        scope=SCOPE_NAMES[scope - 1] if short else None,
        limit=LIMIT_NAMES[limit - 1] if short else None,
    )


def settle_args(ticket: Ticket) -> list[int]:
    """The tpm bookkeeping settle needs: tpm flags, reserved, admission and last extension."""
    return [
        int(ticket.subject.key.tpm is not None),
        int(ticket.subject.tenant.tpm is not None),
        ticket.reserved,
        ticket.at_ms // 1000,
        ticket.first,
        ticket.last_ms // 1000 if ticket.last_ms >= 0 else -1,
        ticket.last,
    ]
