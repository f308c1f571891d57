"""The verified caller: a frozen view of a key and its tenant, built once per cache fill."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from limits import Limits
from server.relay.modelnames import normalise_model

if TYPE_CHECKING:
    from models import ApiKey, Tenant

LIMIT_NAMES = ("rpm", "tpm", "max_concurrent", "daily_tokens", "monthly_tokens", "total_tokens")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and what they may do; no secret material."""

    key_id: int
    prefix: str
    key_name: str
    tenant_id: int
    tenant_name: str
    key_limits: Limits
    tenant_limits: Limits
    allowed_models: frozenset[str] | None
    log_prompts: bool
    prompt_ttl_days: int
    expires_at: float | None

    def expired(self, now: float) -> bool:
        """Whether the key has passed its expiry time."""
        return self.expires_at is not None and now >= self.expires_at

    def may_use(self, model: str) -> bool:
        """Whether the key may name this model."""
        if self.allowed_models is None:
            return True
        return normalise_model(model) in self.allowed_models


def limits_of(row: Tenant | ApiKey) -> Limits:
    """The limits stored on a row (None = unset)."""
    return Limits(**{name: getattr(row, name) for name in LIMIT_NAMES})


def effective_key_limits(key: Limits, tenant: Limits) -> Limits:
    """Key limits with unset values inherited from the tenant, never above the tenant's."""
    values: dict[str, int | None] = {}
    for name in LIMIT_NAMES:
        k, t = getattr(key, name), getattr(tenant, name)
        values[name] = t if k is None else (k if t is None else min(k, t))
    return Limits(**values)


def effective_models(key: list[str] | None, tenant: list[str] | None) -> frozenset[str] | None:
    """The models a key may use: its own list within the tenant's (None = all)."""
    sets = [frozenset(normalise_model(m) for m in ms) for ms in (key, tenant) if ms is not None]
    if not sets:
        return None
    return frozenset.intersection(*sets)


def build_principal(key: ApiKey, tenant: Tenant) -> Principal:
    """The principal for a verified, active key of an active tenant."""
    tenant_limits = limits_of(tenant)
    expires: datetime | None = key.expires_at
    return Principal(
        key_id=key.id,
        prefix=key.prefix,
        key_name=key.name,
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        key_limits=effective_key_limits(limits_of(key), tenant_limits),
        tenant_limits=tenant_limits,
        allowed_models=effective_models(key.allowed_models, tenant.allowed_models),
        log_prompts=tenant.log_prompts if key.log_prompts is None else key.log_prompts,
        prompt_ttl_days=key.prompt_ttl_days or tenant.prompt_ttl_days,
        expires_at=expires.timestamp() if expires is not None else None,
    )
