"""Frozen value types of the limits library: policies, requests, admissions and usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LimitName = Literal[
    "requests", "tokens", "concurrency", "daily_tokens", "monthly_tokens", "total_tokens"
]
ScopeName = Literal["key", "tenant"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one scope; None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    total_tokens: int | None = None

    @property
    def has_budget(self) -> bool:
        """Whether a daily, monthly or total token budget applies."""
        return (
            self.daily_tokens is not None
            or self.monthly_tokens is not None
            or self.total_tokens is not None
        )


@dataclass(frozen=True, slots=True)
class Subject:
    """Who asks; the tenant scope and the key scope are both enforced."""

    tenant_id: str
    key_id: str
    tenant: Limits
    key: Limits  # the key's effective limits: the caller has already applied inheritance


@dataclass(frozen=True, slots=True)
class Ask:
    """What one request asks for."""

    request_id: str  # unique per request: it names the rpm entry, the lease and the reservation
    prompt_tokens: int  # estimate, >= 0
    max_output: int | None  # the client's own output cap, None if it set none


@dataclass(frozen=True, slots=True)
class RateInfo:
    """Figures for OpenAI-style x-ratelimit-* headers, from the most restrictive scope.

    ``reset_*`` is the number of seconds until the next slot (request) or the oldest
    tokens leave the rolling minute, i.e. until ``remaining_*`` grows again.
    """

    limit_requests: int | None
    remaining_requests: int | None
    reset_requests: float | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens: float | None


@dataclass(frozen=True, slots=True)
class Ticket:
    """Everything settle() needs; opaque to the caller, valid for either backend of one kind."""

    request_id: str
    tenant_id: str
    key_id: str
    day: str  # budget windows of the admission; settled usage is charged to them
    month: str
    reserved: int  # tokens reserved at both scopes (prompt estimate + output allowance)
    at_ms: int  # admission time in ms (backend clock); names the tpm bucket to correct
    tpm_key: bool  # whether the reservation went into the key's tpm window
    tpm_tenant: bool  # whether it went into the tenant's tpm window


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to admit(): allowed with a ticket, or denied with the reason."""

    allowed: bool
    scope: ScopeName | None = None  # which scope denied
    limit: LimitName | None = None  # which limit denied
    retry_after: int = 0  # seconds, >= 1 when not allowed
    should_retry: bool = True  # False when only a budget reset can help
    output_cap: int | None = None  # cap the caller must impose upstream; None = no cap needed
    ticket: Ticket | None = None  # present iff allowed
    rate: RateInfo | None = None
    needs_seed: bool = False  # budget counters not trusted yet: seed() then admit again


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage at one scope in the current windows."""

    day: int
    month: int
    total: int
