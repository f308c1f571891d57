"""The audit record of one request (and its ledger delta and prompt log), built in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """A request body and the response text, for a key that opted in."""

    request_body: str
    response_text: str
    ttl_days: int


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the audit log and the ledger see it."""

    request_id: str
    surface: str
    method: str
    path: str
    status: int
    time: datetime
    client_request_id: str | None = None
    tenant_id: int | None = None
    key_id: int | None = None
    key_prefix: str | None = None
    model: str | None = None
    backend: str | None = None
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    client_ip: str | None = None
    user_agent: str | None = None
    error: str | None = None
    limit: str | None = None  # scope:limit that refused it (a gateway 429)
    usage_day: str | None = None  # the budget day the tokens were charged to (admitted only)
    prompt: PromptRecord | None = None


def now_utc() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)
