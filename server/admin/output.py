"""How the admin CLI shows tenants, keys and usage: aligned tables and JSON; never a hash."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from models import LIMIT_FIELDS, ApiKey, KeyStatus, Tenant
from server.accounting.ledger import UsageTotals
from server.admin.service import Changes, Keep, TenantInfo, UsageReport
from server.auth.principal import effective_key_limits, effective_models, limits_of

LIMIT_HEADERS = ("RPM", "TPM", "CONCURRENT", "DAILY", "MONTHLY", "TOTAL")
TIME_HEADERS = ("EXPIRES", "CREATED", "LAST USED")
INHERITED_MARK = "*"
ALL_KEYS = "(all)"


def to_json(data: Any) -> str:
    """Indented JSON for scripts."""
    return json.dumps(data, indent=2, sort_keys=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def iso(moment: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC, for JSON."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def short_time(moment: datetime | None) -> str:
    """A timestamp to the minute in UTC, for tables."""
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _models(models: Sequence[str] | frozenset[str] | None) -> str:
    return "all" if models is None else ",".join(sorted(models)) or "none"


def tenant_json(info: TenantInfo) -> dict[str, Any]:
    """One tenant for --json."""
    t = info.tenant
    return {
        "id": t.id,
        "name": t.name,
        "status": str(t.status),
        "limits": {name: getattr(t, name) for name in LIMIT_FIELDS},
        "models": t.allowed_models,
        "log_prompts": t.log_prompts,
        "prompt_ttl_days": t.prompt_ttl_days,
        "active_keys": info.active_keys,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


def tenants_table(infos: Sequence[TenantInfo]) -> str:
    """The tenant listing; '-' is unlimited."""
    headers = ("NAME", "STATUS", *LIMIT_HEADERS, "MODELS", "PROMPTS", "KEYS", "CREATED")
    rows = [
        (
            i.tenant.name,
            str(i.tenant.status),
            *(_number(getattr(i.tenant, n)) for n in LIMIT_FIELDS),
            _models(i.tenant.allowed_models),
            f"{i.tenant.prompt_ttl_days}d" if i.tenant.log_prompts else "off",
            str(i.active_keys),
            short_time(i.tenant.created_at),
        )
        for i in infos
    ]
    return table(headers, rows)


def key_status(key: ApiKey, now: datetime) -> str:
    """The key's status, or 'expired' for an active key past its expiry."""
    if key.status == KeyStatus.ACTIVE and key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return str(key.status)


def inherited(key: ApiKey, tenant: Tenant) -> list[str]:
    """Limits whose effective value is the tenant's (key unset, or set above the tenant's)."""
    out = []
    for name in LIMIT_FIELDS:
        own, cap = getattr(key, name), getattr(tenant, name)
        if cap is not None and (own is None or own > cap):
            out.append(name)
    return out


def key_json(key: ApiKey, tenant: Tenant, now: datetime) -> dict[str, Any]:
    """One key for --json: its own settings and the effective ones; no hash."""
    effective = effective_key_limits(limits_of(key), limits_of(tenant))
    models = effective_models(key.allowed_models, tenant.allowed_models)
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "tenant": tenant.name,
        "status": key_status(key, now),
        "limits": {name: getattr(effective, name) for name in LIMIT_FIELDS},
        "inherited": inherited(key, tenant),
        "key_limits": {name: getattr(key, name) for name in LIMIT_FIELDS},
        "models": None if models is None else sorted(models),
        "key_models": key.allowed_models,
        "log_prompts": tenant.log_prompts if key.log_prompts is None else key.log_prompts,
        "prompt_ttl_days": key.prompt_ttl_days or tenant.prompt_ttl_days,
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
    }


def keys_table(keys: Sequence[ApiKey], tenant: Tenant, now: datetime) -> str:
    """The key listing with effective limits; inherited ones are marked."""
    headers = ("PREFIX", "NAME", "STATUS", *LIMIT_HEADERS, "MODELS", *TIME_HEADERS)
    rows: list[list[str]] = []
    for key in keys:
        effective = effective_key_limits(limits_of(key), limits_of(tenant))
        marked = set(inherited(key, tenant))
        limits = [
            _number(getattr(effective, n)) + (INHERITED_MARK if n in marked else "")
            for n in LIMIT_FIELDS
        ]
        models = _models(effective_models(key.allowed_models, tenant.allowed_models))
        if key.allowed_models is None and tenant.allowed_models is not None:
            models += INHERITED_MARK
        rows.append(
            [key.prefix, key.name, key_status(key, now), *limits, models]
            + [short_time(key.expires_at), short_time(key.created_at)]
            + [short_time(key.last_used_at)]
        )
    out = table(headers, rows)
    if any(INHERITED_MARK in cell for row in rows for cell in row[3:10]):
        out += f"\n{INHERITED_MARK} inherited from tenant {tenant.name}; '-' = unlimited"
    return out


def totals_json(totals: UsageTotals) -> dict[str, int]:
    """Requests and tokens of a period, for JSON."""
    return {
        "requests": totals.requests,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "tokens": totals.tokens,
    }


def _periods(report: UsageReport) -> list[tuple[str, UsageTotals, int | None]]:
    u, lim = report.usage, report.limits
    return [
        ("day", u.day, lim.daily_tokens),
        ("month", u.month, lim.monthly_tokens),
        ("total", u.total, lim.total_tokens),
    ]


def usage_json(report: UsageReport, timezone: str) -> dict[str, Any]:
    """Usage for --json: per period the counts, the budget and what remains of it."""
    data: dict[str, Any] = {
        "tenant": report.tenant.name,
        "key": None if report.key is None else report.key.prefix,
        "today": report.usage.today.isoformat(),
        "timezone": timezone,
    }
    for period, totals, budget in _periods(report):
        remaining = None if budget is None else max(budget - totals.tokens, 0)
        data[period] = {**totals_json(totals), "budget": budget, "remaining": remaining}
    if report.key is None:
        data["keys"] = [
            {"prefix": key.prefix, "name": key.name}
            | {p: totals_json(getattr(used, p)) for p in ("day", "month", "total")}
            for key, used in report.keys
        ]
    return data


def usage_csv(report: UsageReport) -> str:
    """Usage as CSV: the report's scope per period, then (for a tenant) each key per period."""
    scope = ALL_KEYS if report.key is None else report.key.prefix
    rows: list[list[object]] = []
    for period, totals, budget in _periods(report):
        remaining = None if budget is None else max(budget - totals.tokens, 0)
        rows.append([scope, period, *totals_json(totals).values(), budget, remaining])
    for key, used in report.keys:
        for period in ("day", "month", "total"):
            rows.append([key.prefix, period, *totals_json(getattr(used, period)).values()])
            rows[-1] += [None, None]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["key", "period", "requests", "prompt_tokens", "completion_tokens", "tokens"]
        + ["budget", "remaining"]
    )
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().rstrip("\n")


def usage_table(report: UsageReport, timezone: str) -> str:
    """Usage as a table: day, month and all time against their budgets."""
    who = f"tenant {report.tenant.name}"
    if report.key is not None:
        who = f"key {report.key.prefix} ({report.key.name}) of {who}"
    headers = ("PERIOD", "REQUESTS", "PROMPT", "COMPLETION", "TOKENS", "BUDGET", "REMAINING")
    rows = []
    for period, totals, budget in _periods(report):
        remaining = "-" if budget is None else str(max(budget - totals.tokens, 0))
        counts = (totals.requests, totals.prompt_tokens, totals.completion_tokens, totals.tokens)
        rows.append((period, *map(str, counts), _number(budget), remaining))
    title = f"usage of {who} on {report.usage.today.isoformat()} ({timezone})"
    out = f"{title}\n{table(headers, rows)}"
    if report.keys:
        per_key = [
            (key.prefix, key.name, *(str(getattr(used, p).tokens) for p in ("day", "month")))
            + (str(used.total.tokens),)
            for key, used in report.keys
        ]
        out += "\n\ntokens per key\n" + table(("KEY", "NAME", "DAY", "MONTH", "TOTAL"), per_key)
    return out


def describe(changes: Changes) -> str:
    """What a set-limits changed, as `rpm=none, models=llama3, log-prompts=on`."""
    parts = [f"{k.replace('_', '-')}={_or_none(v)}" for k, v in changes.limits.items()]
    if not isinstance(changes.models, Keep):
        models = changes.models
        parts.append("models=" + ("none" if models is None else ",".join(models)))
    if not isinstance(changes.log_prompts, Keep):
        prompts = changes.log_prompts
        parts.append(
            "log-prompts=" + ("inherit" if prompts is None else "on" if prompts else "off")
        )
    if not isinstance(changes.prompt_ttl_days, Keep):
        parts.append(f"prompt-ttl-days={_or_none(changes.prompt_ttl_days)}")
    return ", ".join(parts)


def _or_none(value: int | None) -> str:
    return "none" if value is None else str(value)
