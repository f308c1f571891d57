"""Self-service usage: GET /v1/usage and /api/usage for the calling key (?by=day|month|model)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from sanic import Blueprint, HTTPResponse, json
from tortoise.exceptions import BaseORMException

from server.accounting.admission import subject_of, usage_of
from server.accounting.closing import admit_request
from server.accounting.ledger import BREAKDOWNS, UsageTotals, overall, usage_by
from server.context import GatewayRequest
from server.errors import BadRequest, Unavailable


def _day(request: GatewayRequest, name: str) -> date | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a date like 2026-11-30, got {value[:40]!r}") from exc


def _counts(totals: UsageTotals) -> dict[str, int]:
    return {**asdict(totals), "tokens": totals.tokens}


async def _breakdown(request: GatewayRequest, by: str) -> dict[str, Any]:
    """The calling key's ledger per day, month or model (budget time zone, days inclusive)."""
    if by not in BREAKDOWNS:
        raise BadRequest(f"by must be one of {', '.join(BREAKDOWNS)}, got {by[:40]!r}")
    since, until = _day(request, "since"), _day(request, "until")
    if since is not None and until is not None and until < since:
        raise BadRequest("until must not be before since")
    p = request.ctx.caller
    try:
        rows = await usage_by(
            tenant_id=p.tenant_id, key_id=p.key_id, by=by, since=since, until=until
        )
    except (BaseORMException, OSError) as exc:
        raise Unavailable("the usage ledger cannot be read right now; retry") from exc
    return {
        "by": by,
        "since": None if since is None else since.isoformat(),
        "until": None if until is None else until.isoformat(),
        "timezone": request.app.ctx.worker.settings.budget_timezone,
        "rows": [{by: row.group, **_counts(row.totals)} for row in rows],
        "total": _counts(overall(rows)),
    }


async def _usage(request: GatewayRequest) -> HTTPResponse:
    await admit_request(request)
    p = request.ctx.caller
    by = request.args.get("by")
    breakdown = None if by is None else await _breakdown(request, by)
    worker = request.app.ctx.worker
    tenant_usage, key_usage = await usage_of(worker.limits, worker.settings.tz, subject_of(p))
    body: dict[str, Any] = {
        "tenant": p.tenant_name,
        "key": {"prefix": p.prefix, "name": p.key_name},
        "limits": {"key": asdict(p.key_limits), "tenant": asdict(p.tenant_limits)},
        "usage": {"key": asdict(key_usage), "tenant": asdict(tenant_usage)},
        "allowed_models": sorted(p.allowed_models) if p.allowed_models is not None else None,
    }
    if breakdown is not None:
        body["breakdown"] = breakdown
    return json(body)


def register(api: Blueprint, v1: Blueprint) -> None:
    """Add the usage endpoint to both surfaces."""
    api.add_route(_usage, "/usage", methods=["GET"], name="api_usage")
    v1.add_route(_usage, "/usage", methods=["GET"], name="v1_usage")
