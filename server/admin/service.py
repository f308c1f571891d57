"""Operator actions on tenants and keys: the service layer under the admin CLI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count

from limits import Limits
from models import LIMIT_FIELDS, ApiKey, KeyStatus, Tenant, TenantStatus
from server.accounting.ledger import LedgerUsage, ledger_usage
from server.auth.apikey import generate_key, hash_key, is_prefix
from server.auth.invalidation import Invalidation
from server.auth.principal import effective_key_limits, limits_of
from server.relay.modelnames import normalise_model

Notify = Callable[[Invalidation], Awaitable[object]]


class AdminError(Exception):
    """An operator request that cannot be carried out; the message is one line."""


class Keep(Enum):
    """Marks a setting that a change leaves as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class Changes:
    """Settings to apply to a tenant or key: absent limits stay, None clears one."""

    limits: Mapping[str, int | None] = field(default_factory=dict)
    models: list[str] | None | Keep = KEEP
    log_prompts: bool | None | Keep = KEEP
    prompt_ttl_days: int | None | Keep = KEEP


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key row and the full key string, which is never available again."""

    row: ApiKey
    key: str


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """A tenant and how many of its keys are active."""

    tenant: Tenant
    active_keys: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Ledger usage of a tenant or one key, with the budgets that apply to it."""

    tenant: Tenant
    key: ApiKey | None
    usage: LedgerUsage
    limits: Limits
    keys: tuple[tuple[ApiKey, LedgerUsage], ...] = ()  # a tenant's report: each of its keys


async def get_tenant(name: str) -> Tenant:
    """The tenant called `name`."""
    tenant = await Tenant.get_or_none(name=name)
    if tenant is None:
        raise AdminError(f"no tenant named {name!r}")
    return tenant


async def get_key(prefix: str) -> ApiKey:
    """The key with this prefix, its tenant loaded."""
    if not is_prefix(prefix):
        raise AdminError(f"{prefix!r} is not a key prefix (nz_ followed by 8 letters or digits)")
    key = await ApiKey.get_or_none(prefix=prefix).select_related("tenant")
    if key is None:
        raise AdminError(f"no key with prefix {prefix}")
    return key


def _check_name(name: str, what: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise AdminError(f"{what} name must be 1-100 printable characters")
    return name


def _apply(row: Tenant | ApiKey, changes: Changes) -> None:
    """Validate `changes` and set them on `row` (not saved)."""
    is_tenant = isinstance(row, Tenant)
    for name, value in changes.limits.items():
        if name not in LIMIT_FIELDS:
            raise AdminError(f"unknown limit {name!r}")
        if value is not None and (isinstance(value, bool) or value < 0):
            raise AdminError(f"{name} must be a whole number >= 0 or none")
        setattr(row, name, value)
    if changes.models is not KEEP:
        models = changes.models
        if models is not None:
            models = list(dict.fromkeys(m.strip() for m in models if m.strip()))
            if not models:
                raise AdminError("models needs at least one model name (or none for all models)")
        row.allowed_models = models
    if changes.log_prompts is not KEEP:
        if changes.log_prompts is None and is_tenant:
            raise AdminError("a tenant's prompt logging is on or off, not none")
        row.log_prompts = changes.log_prompts
    if changes.prompt_ttl_days is not KEEP:
        days = changes.prompt_ttl_days
        if days is None and is_tenant:
            raise AdminError("a tenant's prompt TTL needs a number of days")
        if days is not None and days < 1:
            raise AdminError("prompt TTL must be at least 1 day")
        row.prompt_ttl_days = days


def _check_within_tenant(key: ApiKey, tenant: Tenant, changes: Changes) -> None:
    """Refuse key limits above the tenant's and models the tenant may not use."""
    for name, value in changes.limits.items():
        cap = getattr(tenant, name)
        if value is not None and cap is not None and value > cap:
            raise AdminError(f"key {name} {value} is above tenant {tenant.name}'s {name} {cap}")
    if isinstance(changes.models, list) and tenant.allowed_models is not None:
        allowed = {normalise_model(m) for m in tenant.allowed_models}
        outside = [m for m in key.allowed_models or [] if normalise_model(m) not in allowed]
        if outside:
            raise AdminError(
                f"model {outside[0]} is not among tenant {tenant.name}'s allowed models"
            )


async def create_tenant(name: str, changes: Changes = Changes()) -> Tenant:
    """A new active tenant; names are unique."""
    name = _check_name(name, "tenant")
    if await Tenant.exists(name=name):
        raise AdminError(f"a tenant named {name!r} already exists")
    tenant = Tenant(name=name)
    _apply(tenant, changes)
    try:
        await tenant.save()
    except IntegrityError as exc:
        raise AdminError(f"a tenant named {name!r} already exists") from exc
    return tenant


async def list_tenants() -> list[TenantInfo]:
    """Every tenant by name, with its number of active keys."""
    tenants = await Tenant.all().order_by("name")
    counts = (
        await ApiKey.filter(status=KeyStatus.ACTIVE)
        .annotate(n=Count("id"))
        .group_by("tenant_id")
        .values("tenant_id", "n")
    )
    active = {row["tenant_id"]: int(row["n"]) for row in counts}
    return [TenantInfo(t, active.get(t.id, 0)) for t in tenants]


async def set_tenant_status(name: str, status: TenantStatus, *, notify: Notify) -> Tenant:
    """Disable or enable a tenant (all its keys); idempotent."""
    tenant = await get_tenant(name)
    tenant.status = status
    await tenant.save()
    await notify(Invalidation(kind="tenant", id=tenant.id))
    return tenant


async def create_key(
    tenant_name: str,
    name: str,
    changes: Changes = Changes(),
    *,
    expires_days: int | None = None,
    now: datetime | None = None,
) -> CreatedKey:
    """A new active key; the full key string is returned here and never again."""
    tenant = await get_tenant(tenant_name)
    name = _check_name(name, "key")
    if await ApiKey.exists(tenant_id=tenant.id, name=name):
        raise AdminError(f"tenant {tenant.name} already has a key named {name!r}")
    if expires_days is not None and expires_days < 1:
        raise AdminError("expires-days must be at least 1")
    presented = generate_key()
    while await ApiKey.exists(prefix=presented.prefix):
        presented = generate_key()
    key = ApiKey(tenant=tenant, name=name, prefix=presented.prefix, key_hash=hash_key(presented))
    _apply(key, changes)
    _check_within_tenant(key, tenant, changes)
    if expires_days is not None:
        key.expires_at = (now or datetime.now(UTC)) + timedelta(days=expires_days)
    try:
        await key.save()
    except IntegrityError as exc:
        raise AdminError(f"tenant {tenant.name} already has a key named {name!r}") from exc
    return CreatedKey(row=key, key=presented.full)


async def list_keys(tenant_name: str) -> tuple[Tenant, list[ApiKey]]:
    """A tenant and all its keys (revoked ones too), oldest first."""
    tenant = await get_tenant(tenant_name)
    keys = await ApiKey.filter(tenant_id=tenant.id).order_by("created_at", "id")
    for key in keys:
        key.tenant = tenant
    return tenant, keys


async def set_key_status(
    prefix: str, status: KeyStatus, *, notify: Notify, now: datetime | None = None
) -> tuple[ApiKey, bool]:
    """Disable, enable or revoke a key; returns the key and whether it changed.

    Revocation is final: a revoked key can be neither enabled nor disabled.
    """
    key = await get_key(prefix)
    if key.status == status:
        return key, False
    if key.status == KeyStatus.REVOKED:
        raise AdminError(f"key {key.prefix} is revoked; revocation is final")
    key.status = status
    if status == KeyStatus.REVOKED:
        key.revoked_at = now or datetime.now(UTC)
    await key.save()
    await notify(Invalidation(kind="key", id=key.id))
    return key, True


async def revoke_key(
    prefix: str, *, notify: Notify, now: datetime | None = None
) -> tuple[ApiKey, bool]:
    """Revoke a key for good; returns the key and whether it was not revoked already."""
    return await set_key_status(prefix, KeyStatus.REVOKED, notify=notify, now=now)


async def set_limits(
    *, tenant: str | None = None, prefix: str | None = None, changes: Changes, notify: Notify
) -> Tenant | ApiKey:
    """Change the limits of a tenant or of one key; never touches usage."""
    if (tenant is None) == (prefix is None):
        raise AdminError("give either a tenant or a key prefix")
    if tenant is not None:
        row = await get_tenant(tenant)
        _apply(row, changes)
        await row.save()
        await notify(Invalidation(kind="tenant", id=row.id))
        return row
    assert prefix is not None
    key = await get_key(prefix)
    _apply(key, changes)
    _check_within_tenant(key, key.tenant, changes)
    await key.save()
    await notify(Invalidation(kind="key", id=key.id))
    return key


async def usage(
    *, tenant: str | None = None, prefix: str | None = None, today: date
) -> UsageReport:
    """Ledger usage of a tenant (all keys) or of one key, with the limits that apply."""
    if (tenant is None) == (prefix is None):
        raise AdminError("give either a tenant or a key prefix")
    if tenant is not None:
        row = await get_tenant(tenant)
        used = await ledger_usage(tenant_id=row.id, key_id=None, today=today)
        keys = await ApiKey.filter(tenant_id=row.id).order_by("created_at", "id")
        each = [(k, await ledger_usage(tenant_id=row.id, key_id=k.id, today=today)) for k in keys]
        return UsageReport(row, None, used, limits_of(row), tuple(each))
    assert prefix is not None
    key = await get_key(prefix)
    used = await ledger_usage(tenant_id=key.tenant_id, key_id=key.id, today=today)
    limits = effective_key_limits(limits_of(key), limits_of(key.tenant))
    return UsageReport(tenant=key.tenant, key=key, usage=used, limits=limits)
