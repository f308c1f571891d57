"""Frozen value types of the limits library: policies, requests, admissions, extensions, usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LimitName = Literal[  # in the order of the scripts' numbering (limits/verdict.py)
    "requests",
    "tokens",
    "concurrency",
    "daily_tokens",
    "monthly_tokens",
    "total_tokens",
    "audit_queue",
]
ScopeName = Literal["key", "tenant"]  # scope 1, 2 in the scripts
OutputKind = Literal["none", "stream", "single"]
OUTPUT_KINDS: tuple[OutputKind, ...] = ("none", "single", "stream")  # index = code in the scripts


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

    @property
    def meters_tokens(self) -> bool:
        """Whether a token limit (tpm or a budget) applies."""
        return self.tpm is not None or self.has_budget


@dataclass(frozen=True, slots=True)
class Subject:
    """Who asks; the tenant scope and the key scope are both enforced."""

    tenant_id: str
    key_id: str
    tenant: Limits
    key: Limits  # the key's effective limits: the caller has already applied inheritance

    @property
    def meters_tokens(self) -> bool:
        """Whether a token limit applies at either scope."""
        return self.key.meters_tokens or self.tenant.meters_tokens


@dataclass(frozen=True, slots=True)
class Ask:
    """What one request asks for.

    ``output``: "none" for prompt-only requests (embeddings, metadata), "single" for a
    non-streamed generation, "stream" for a streamed one (reserved step by step).
    """

    request_id: str  # server-generated and unique: it names the lease and the reservation
    prompt_tokens: int  # estimate, >= 0
    max_output: int | None  # the client's own output cap (>= 1), None if it set none
    output: OutputKind

    def __post_init__(self) -> None:
        if not self.request_id:
            raise ValueError("request_id must not be empty")
        if self.prompt_tokens < 0:
            raise ValueError("prompt_tokens must be >= 0")
        if self.max_output is not None and self.max_output < 1:
            raise ValueError("max_output must be >= 1 or None")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}")


@dataclass(frozen=True, slots=True)
class RateInfo:
    """Figures for OpenAI-style x-ratelimit-* headers, from the most restrictive scope.

    ``remaining_tokens`` counts the tokens held by requests in flight (this one included) as
    used. ``reset_*`` is the number of seconds until the oldest requests or tokens leave the
    rolling minute, i.e. until ``remaining_*`` grows again.
    """

    limit_requests: int | None
    remaining_requests: int | None
    reset_requests: float | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens: float | None


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted request: what extend(), refresh() and settle() need. Returned anew by extend().

    Only ``output_cap``, ``stepped``, ``reserved`` and ``output_reserved`` are for the caller
    to read; the rest is the backend's bookkeeping.
    """

    request_id: str
    subject: Subject  # the limits as admitted; extensions are checked against them
    output: OutputKind
    day: str  # budget windows of the admission; settled usage is charged to them
    month: str
    prompt: int  # the prompt estimate reserved
    output_cap: int | None  # the cap to forward upstream; None = no cap
    stepped: bool  # the relay must extend() as output nears output_reserved
    reserved: int  # tokens reserved now at both scopes: prompt + output so far
    at_ms: int  # admission time (backend clock); names the tpm bucket of the first reservation
    first: int  # tokens reserved at admission
    last_ms: int  # time of the latest extension that granted tokens, -1 if none
    last: int  # tokens granted by extensions within last_ms's second

    @property
    def tenant_id(self) -> str:
        """The tenant of the request."""
        return self.subject.tenant_id

    @property
    def key_id(self) -> str:
        """The key of the request."""
        return self.subject.key_id

    @property
    def output_reserved(self) -> int:
        """Output tokens the relay may pass before it must extend (or stop)."""
        return self.reserved - self.prompt


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to admit(): allowed with a ticket, or denied with the reason.

    A denial with ``limit == "audit_queue"`` (scope None) means the audit queue is over its
    byte bound: the caller answers 503 (fail-closed), not 429.
    """

    allowed: bool
    scope: ScopeName | None = None  # which scope denied (None for audit_queue)
    limit: LimitName | None = None  # which limit denied
    retry_after: int = 0  # seconds, >= 1 when not allowed
    should_retry: bool = True  # False when only a budget reset can help
    output_cap: int | None = None  # cap the caller must impose upstream; None = no cap needed
    ticket: Ticket | None = None  # present iff allowed
    rate: RateInfo | None = None
    needs_seed: bool = False  # budget counters not trusted yet: seed() then admit again


@dataclass(frozen=True, slots=True)
class Extension:
    """The answer to extend(): how many more output tokens are reserved, and the new ticket."""

    granted: int  # 0: nothing left (or the reservation lapsed): end the stream as length-limited
    ticket: Ticket  # the ticket to use from now on
    scope: ScopeName | None = None  # the scope whose counter gave less than asked, if any
    limit: LimitName | None = None  # that counter ("tokens" or a budget)
    lapsed: bool = False  # the reservation is no longer open (expired without refresh)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage at one scope in the current windows: settled, and reserved in flight.

    seed() reads only day, month and total.
    """

    day: int
    month: int
    total: int
    reserved: int = 0  # tokens held by requests in flight (count against every window)
