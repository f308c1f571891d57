"""What the operator reads: the audit log, prompt logs, usage breakdowns; and the prompt purge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from models import ApiKey, AuditEvent, PromptLog, Tenant
from server.accounting.ledger import Breakdown, UsageRow, usage_by
from server.accounting.purge import purge_expired_prompts
from server.admin.service import AdminError, get_key, get_tenant

MAX_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which audit events to show (newest first)."""

    tenant: str | None = None
    prefix: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    status: int | None = None
    model: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit event and the name of its tenant (None: refused before a key was known)."""

    event: AuditEvent
    tenant: str | None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise AdminError(f"limit must be between 1 and {MAX_LIMIT}")


async def audit_events(q: AuditQuery) -> list[AuditRow]:
    """The events matching `q`, newest first, at most q.limit."""
    _check_limit(q.limit)
    if q.since is not None and q.until is not None and q.until <= q.since:
        raise AdminError("--until must be after --since")
    query = AuditEvent.all()
    if q.tenant is not None:
        query = query.filter(tenant_id=(await get_tenant(q.tenant)).id)
    if q.prefix is not None:
        query = query.filter(key_prefix=(await get_key(q.prefix)).prefix)
    if q.since is not None:
        query = query.filter(time__gte=q.since)
    if q.until is not None:
        query = query.filter(time__lt=q.until)
    if q.status is not None:
        query = query.filter(status=q.status)
    if q.model is not None:
        query = query.filter(model=q.model)
    events = await query.order_by("-time", "-id").limit(q.limit)
    ids = {e.tenant_id for e in events if e.tenant_id is not None}
    names = dict(await Tenant.filter(id__in=ids).values_list("id", "name")) if ids else {}
    return [AuditRow(e, names.get(e.tenant_id)) for e in events]


async def prompt_logs(
    prefix: str, *, since: datetime | None = None, limit: int = 20
) -> tuple[ApiKey, list[PromptLog]]:
    """The key and its stored prompt logs, newest first (only keys that opted in have any);
    a log past its TTL is gone, even before the purge deletes it."""
    _check_limit(limit)
    key = await get_key(prefix)
    query = PromptLog.filter(key_id=key.id, expires_at__gt=datetime.now(UTC))
    if since is not None:
        query = query.filter(created_at__gte=since)
    return key, await query.order_by("-created_at", "-id").limit(limit)


@dataclass(frozen=True, slots=True)
class UsageBreakdown:
    """Ledger usage of a tenant (every key) or of one key, per day, month or model."""

    tenant: Tenant
    key: ApiKey | None
    by: Breakdown
    since: date | None
    until: date | None
    rows: list[UsageRow]
    keys: dict[int, ApiKey]  # every key the rows name


async def usage_breakdown(
    *,
    tenant: str | None = None,
    prefix: str | None = None,
    by: Breakdown,
    since: date | None = None,
    until: date | None = None,
) -> UsageBreakdown:
    """Usage per key and per day, month or model, between two days (inclusive)."""
    if (tenant is None) == (prefix is None):
        raise AdminError("give either a tenant or a key prefix")
    if since is not None and until is not None and until < since:
        raise AdminError("--until must not be before --since")
    if tenant is not None:
        row, key = await get_tenant(tenant), None
    else:
        assert prefix is not None
        key = await get_key(prefix)
        row = key.tenant
    rows = await usage_by(
        tenant_id=row.id, key_id=None if key is None else key.id, by=by, since=since, until=until
    )
    keys = {k.id: k for k in await ApiKey.filter(id__in={r.key_id for r in rows})}
    return UsageBreakdown(row, key, by, since, until, rows, keys)


async def purge_prompts(now: datetime) -> int:
    """Delete every expired prompt log, in bounded batches; how many were deleted."""
    removed = 0
    while True:
        batch = await purge_expired_prompts(now)
        removed += batch
        if batch == 0:
            return removed
