"""The Tenant model: owns keys; its limits bound every key's."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields

from models.limits_mixin import LimitColumns

LIMIT_FIELDS = ("rpm", "tpm", "max_concurrent", "daily_tokens", "monthly_tokens", "total_tokens")


class TenantStatus(StrEnum):
    """Whether a tenant's keys may be used."""

    ACTIVE = "active"
    DISABLED = "disabled"


class Tenant(LimitColumns):
    """A customer of the gateway; all its keys share its limits."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    status = fields.CharEnumField(TenantStatus, max_length=16, default=TenantStatus.ACTIVE)
    log_prompts = fields.BooleanField(default=False)
    prompt_ttl_days = fields.IntField(default=7)

    class Meta:
        table = "tenants"
