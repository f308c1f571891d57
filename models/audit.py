"""Audit events (always written) and prompt logs (opt-in, expiring)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEvent(Model):
    """Metadata of one request: who, what, where it went, what it cost, how it ended."""

    id = fields.BigIntField(primary_key=True)
    request_id = fields.CharField(max_length=64, unique=True)  # the server's: one event each
    client_request_id = fields.CharField(max_length=64, null=True)  # the client's X-Request-Id
    time = fields.DatetimeField(db_index=True)
    tenant_id = fields.IntField(null=True, db_index=True)
    key_id = fields.IntField(null=True)
    key_prefix = fields.CharField(max_length=16, null=True)
    surface = fields.CharField(max_length=8)
    method = fields.CharField(max_length=32)
    path = fields.CharField(max_length=2048)
    model = fields.CharField(max_length=255, null=True)
    backend = fields.CharField(max_length=100, null=True)
    status = fields.IntField()
    latency_ms = fields.FloatField(null=True)
    ttfb_ms = fields.FloatField(null=True)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    tokens_estimated = fields.BooleanField(default=False)
    client_ip = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=512, null=True)
    error = fields.CharField(max_length=64, null=True)
    limit = fields.CharField(max_length=32, null=True)  # scope:limit that refused it (429)

    class Meta:
        table = "audit_events"


class PromptLog(Model):
    """A request body and response text kept for a key that opted in, until expires_at."""

    id = fields.BigIntField(primary_key=True)
    request_id = fields.CharField(max_length=64, db_index=True)
    key_id = fields.IntField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    request_body = fields.TextField()
    response_text = fields.TextField()
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "prompt_logs"
