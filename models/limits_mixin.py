"""The six limit columns shared by tenants and keys (null = unlimited / inherit)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class LimitColumns(Model):
    """Abstract base adding the limit columns."""

    rpm = fields.IntField(null=True)
    tpm = fields.BigIntField(null=True)
    max_concurrent = fields.IntField(null=True)
    daily_tokens = fields.BigIntField(null=True)
    monthly_tokens = fields.BigIntField(null=True)
    total_tokens = fields.BigIntField(null=True)
    allowed_models: fields.Field[list[str] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        abstract = True
