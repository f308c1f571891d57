"""The ApiKey model: a prefix shown to people and an Argon2id hash, never the key itself."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields

from models.limits_mixin import LimitColumns

if TYPE_CHECKING:
    from models.tenant import Tenant


class KeyStatus(StrEnum):
    """Lifecycle of a key; revoked is final."""

    ACTIVE = "active"
    DISABLED = "disabled"
    REVOKED = "revoked"


class ApiKey(LimitColumns):
    """One API key of a tenant; null limits inherit the tenant's."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="keys", on_delete=fields.CASCADE
    )
    tenant_id: int
    name = fields.CharField(max_length=100)
    prefix = fields.CharField(max_length=16, unique=True, db_index=True)
    key_hash = fields.CharField(max_length=255)
    status = fields.CharEnumField(KeyStatus, max_length=16, default=KeyStatus.ACTIVE)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    log_prompts = fields.BooleanField(null=True)
    prompt_ttl_days = fields.IntField(null=True)

    class Meta:
        table = "api_keys"
        unique_together = (("tenant", "name"),)

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} tenant={self.tenant_id} status={self.status}>"
