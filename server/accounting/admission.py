"""Admission and settlement around the limits backend: seeding, fail-closed, 429 answers."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from zoneinfo import ZoneInfo

from loguru import logger

from limits import (
    Admission,
    Ask,
    LimitsBackend,
    LimitsUnavailable,
    RateInfo,
    Subject,
    Ticket,
    Usage,
)
from server.accounting.ledger import LedgerUsage, ledger_usage
from server.auth.principal import Principal
from server.errors import LIMIT_HEADER, RateLimited, Unavailable

_LABELS = {
    "requests": "requests per minute",
    "tokens": "tokens per minute",
    "concurrency": "concurrent requests",
    "daily_tokens": "daily token budget",
    "monthly_tokens": "monthly token budget",
    "total_tokens": "total token budget",
}
_LIMIT_FIELD = {
    "requests": "rpm",
    "tokens": "tpm",
    "concurrency": "max_concurrent",
    "daily_tokens": "daily_tokens",
    "monthly_tokens": "monthly_tokens",
    "total_tokens": "total_tokens",
}
_BUDGETS = ("daily_tokens", "monthly_tokens", "total_tokens")


def subject_of(p: Principal) -> Subject:
    """The limits subject of a principal: its tenant and its effective key limits."""
    return Subject(
        tenant_id=str(p.tenant_id), key_id=str(p.key_id), tenant=p.tenant_limits, key=p.key_limits
    )


def _unavailable(exc: Exception) -> Unavailable:
    logger.warning("limits store unreachable: {}", type(exc).__name__)
    return Unavailable(
        "the gateway cannot check rate limits right now (limits store unreachable); "
        "no request is admitted until it is back",
        headers={"Retry-After": "1"},
    )


def _usage(ledger: LedgerUsage) -> Usage:
    return Usage(day=ledger.day_tokens, month=ledger.month_tokens, total=ledger.total_tokens)


async def seed_from_ledger(limits: LimitsBackend, tz: ZoneInfo, subject: Subject) -> None:
    """Rebuild budget counters from the UsageDaily ledger (after Redis lost them)."""
    today = datetime.now(tz).date()
    tenant_id, key_id = int(subject.tenant_id), int(subject.key_id)
    tenant = await ledger_usage(tenant_id=tenant_id, key_id=None, today=today)
    key = await ledger_usage(tenant_id=tenant_id, key_id=key_id, today=today)
    await limits.seed(subject, _usage(tenant), _usage(key))


async def admit(limits: LimitsBackend, tz: ZoneInfo, p: Principal, ask: Ask) -> Admission:
    """Admit or raise RateLimited (429) / Unavailable (503); seeds counters when needed."""
    subject = subject_of(p)
    try:
        admission = await limits.admit(subject, ask)
        if admission.needs_seed:
            await seed_from_ledger(limits, tz, subject)
            admission = await limits.admit(subject, ask)
    except LimitsUnavailable as exc:
        raise _unavailable(exc) from exc
    if admission.needs_seed:
        raise Unavailable("usage counters are being rebuilt; retry", headers={"Retry-After": "1"})
    if not admission.allowed and admission.limit == "audit_queue":
        raise Unavailable(
            "the audit queue is full (the database has been unreachable for a while); no "
            "request is admitted until its events are written",
            headers={"Retry-After": "5"},
        )
    if not admission.allowed:
        raise _denied(p, admission)
    return admission


def _denied(p: Principal, a: Admission) -> RateLimited:
    scope = a.scope or "key"
    limit = a.limit or "requests"
    limits = p.key_limits if scope == "key" else p.tenant_limits
    value = getattr(limits, _LIMIT_FIELD[limit])
    who = "this API key" if scope == "key" else "this key's tenant"
    if not a.should_retry:
        hint = f"it resets in {a.retry_after} s"
    elif limit in _BUDGETS:
        hint = f"the rest is reserved by requests in flight; retry in {a.retry_after} s"
    else:
        hint = f"retry in {a.retry_after} s"
    message = f"limit reached for {who}: {_LABELS[limit]} ({value}); {hint}"
    headers = {
        "Retry-After": str(max(1, a.retry_after)),
        LIMIT_HEADER: f"{scope}:{limit}",
        "x-should-retry": "true" if a.should_retry else "false",
    }
    if a.rate is not None:
        headers.update(rate_headers(a.rate))
    error = RateLimited(message, headers=headers)
    if not a.should_retry:
        error.code = "insufficient_quota"
        error.openai_type = "insufficient_quota"
    return error


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds <= 0:
        return "0s"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    minutes, secs = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{secs}s"


def rate_headers(rate: RateInfo) -> dict[str, str]:
    """OpenAI-named x-ratelimit-* headers for the limits that apply."""
    headers: dict[str, str] = {}
    for kind, limit, remaining, reset in (
        ("requests", rate.limit_requests, rate.remaining_requests, rate.reset_requests),
        ("tokens", rate.limit_tokens, rate.remaining_tokens, rate.reset_tokens),
    ):
        if limit is None:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, remaining or 0))
        headers[f"x-ratelimit-reset-{kind}"] = _duration(reset)
    return headers


async def settle(
    limits: LimitsBackend, ticket: Ticket, used_tokens: int, *, event: bytes | None = None
) -> bool:
    """Replace the reservation by the real count and append the request's audit event, in one
    call; shielded so cancellation cannot skip it. False when nothing was appended."""
    try:
        return await asyncio.shield(limits.settle(ticket, max(0, used_tokens), event=event))
    except LimitsUnavailable as exc:
        logger.warning("settle failed ({}); the reservation expires by itself", type(exc).__name__)
        return False


async def usage_of(limits: LimitsBackend, tz: ZoneInfo, subject: Subject) -> tuple[Usage, Usage]:
    """(tenant, key) usage now, from the limits backend (settled + in flight).

    Seeds first (a no-op once seeded), so figures are right even after Redis lost its data.
    """
    try:
        await seed_from_ledger(limits, tz, subject)
        return await limits.usage(subject)
    except LimitsUnavailable as exc:
        raise _unavailable(exc) from exc
