"""Turn the verdict that admit.lua and its Python twin compute into an Admission."""

from __future__ import annotations

import math
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from limits.policy import Admission, Ask, LimitName, Limits, RateInfo, ScopeName, Subject, Ticket
from limits.windows import TOTAL_RETRY_AFTER_S, seconds_to_next_day, seconds_to_next_month

# The verdict is a list of 13 integers, -1 meaning "none":
#   [code, scope, limit, retry_ms, output_cap, reserved, now_ms,
#    rpm_limit, rpm_remaining, rpm_reset_ms, tpm_limit, tpm_remaining, tpm_reset_ms]
# code 1 admitted, 0 denied, 2 needs seed; scope 1 key, 2 tenant; limit 1..6 in LIMIT_NAMES
# order, which is also the order of a scope's six limits in admit.lua's ARGV.
ADMITTED, DENIED, NEEDS_SEED = 1, 0, 2
LIMIT_NAMES: tuple[LimitName, ...] = (
    "requests",
    "tokens",
    "concurrency",
    "daily_tokens",
    "monthly_tokens",
    "total_tokens",
)
SCOPE_NAMES: tuple[ScopeName, ...] = ("key", "tenant")
BUDGETS: frozenset[LimitName] = frozenset({"daily_tokens", "monthly_tokens", "total_tokens"})


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
    code, scope, limit, retry_ms, cap, reserved, now_ms = (int(v) for v in raw[:7])
    if code == NEEDS_SEED:
        return Admission(allowed=False, retry_after=1, needs_seed=True)
    rate = None
    if raw[7] >= 0 or raw[10] >= 0:
        rate = RateInfo(
            limit_requests=_opt(int(raw[7])),
            remaining_requests=_opt(int(raw[8])),
            reset_requests=_seconds(int(raw[9])),
            limit_tokens=_opt(int(raw[10])),
            remaining_tokens=_opt(int(raw[11])),
            reset_tokens=_seconds(int(raw[12])),
        )
    if code == DENIED:
        name = LIMIT_NAMES[limit - 1]
        return Admission(
            allowed=False,
            scope=SCOPE_NAMES[scope - 1],
            limit=name,
            retry_after=_retry_after(name, retry_ms, now, tz),
            should_retry=name not in BUDGETS or retry_ms > 0,
            rate=rate,
        )
    ticket = Ticket(
        request_id=ask.request_id,
        tenant_id=subject.tenant_id,
        key_id=subject.key_id,
        day=day,
        month=month,
        reserved=reserved,
        at_ms=now_ms,
        tpm_key=subject.key.tpm is not None,
        tpm_tenant=subject.tenant.tpm is not None,
    )
    return Admission(allowed=True, output_cap=_opt(cap), ticket=ticket, rate=rate)
