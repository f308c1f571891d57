"""Tortoise ORM models: tenants, API keys, the usage ledger, audit events and prompt logs."""

from models.audit import AuditEvent, PromptLog
from models.key import ApiKey, KeyStatus
from models.tenant import LIMIT_FIELDS, Tenant, TenantStatus
from models.usage import UsageDaily

__all__ = [
    "LIMIT_FIELDS",
    "ApiKey",
    "AuditEvent",
    "KeyStatus",
    "PromptLog",
    "Tenant",
    "TenantStatus",
    "UsageDaily",
]
