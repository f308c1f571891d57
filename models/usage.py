"""The UsageDaily ledger: per key, day and model, requests and tokens; budgets are rebuilt from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.key import ApiKey
    from models.tenant import Tenant


class UsageDaily(Model):
    """What one key used on one day (in the budget time zone) with one model."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="usage", on_delete=fields.CASCADE
    )
    tenant_id: int
    key: fields.ForeignKeyRelation[ApiKey] = fields.ForeignKeyField(
        "models.ApiKey", related_name="usage", on_delete=fields.CASCADE
    )
    key_id: int
    day = fields.DateField()
    model = fields.CharField(max_length=255, default="")  # "" = requests without a model
    requests = fields.BigIntField(default=0)
    prompt_tokens = fields.BigIntField(default=0)
    completion_tokens = fields.BigIntField(default=0)

    class Meta:
        table = "usage_daily"
        unique_together = (("key", "day", "model"),)
        indexes = (("tenant", "day"),)
