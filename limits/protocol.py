"""The storage protocol every limits backend implements, its one error and shared constants."""

from __future__ import annotations

from typing import Protocol

from limits.policy import Admission, Ask, Extension, Subject, Ticket, Usage

OUTPUT_RESERVE_STEP = 512  # default output_step: tokens a stream reserves at a time
NON_STREAM_OUTPUT_CAP = 4096  # default non_stream_cap: the cap of an uncapped single answer
LAPSE_GRACE_S = 86400  # how long a lapsed reservation can still be settled (and charged)


class LimitsUnavailable(Exception):
    """The backend cannot be reached; the caller fails closed (503)."""


class LimitsBackend(Protocol):
    """Rate limits, concurrency leases and token budgets for a tenant and one of its keys.

    Decisions the two backends share (RedisLimits in Lua, MemoryLimits in Python):

    - Both scopes must pass; a denial reserves nothing. The reported denial is the first
      failing limit in the order audit_queue, total, monthly, daily, requests, tokens,
      concurrency, the key scope before the tenant scope for each limit: spent budgets come
      first because waiting does not help them (should_retry False). audit_queue (scope None):
      the subject's audit stream holds more than its byte bound; the caller answers 503.
    - rpm and tpm: per-second buckets over the last 60 s (a bucket leaves the minute 60 s after
      the start of its second; a clock that goes back counts in the latest second). retry_after
      for them is the wait until enough buckets leave; reset_* in RateInfo the wait until the
      oldest one leaves. Memory per scope is at most 60 buckets per window, whatever the rate.
    - Token limits apply when tpm or any budget is set at either scope. Then a request needs
      room for its prompt (estimate) and, for a generation, one output token at every token
      counter, where room = limit - settled - reserved in flight (tpm: - the minute's tokens);
      allowance = the least room - prompt. What is reserved, at both scopes, in the tpm minute
      of both and against every budget window:
        output "none": the prompt; output_cap None;
        output "single": prompt + output_cap, output_cap = min(max_output or non_stream_cap,
          allowance); without token limits output_cap = max_output and it reserves
          prompt + (max_output or output_step), which only usage shows;
        output "stream": prompt + min(output_step, output_cap), output_cap = min(max_output,
          allowance) (None if neither); stepped when token limits apply and that is below
          output_cap: the relay extend()s as output nears ticket.output_reserved.
    - Every admission opens a reservation (request id -> tokens, expiring after lease_ttl),
      counted at both scopes, which is also its concurrency lease, budget or not, so usage is
      always counted. Reservations count against the current day, month and total. A request
      id that is still open cannot be admitted again (ValueError): ids are never merged.
    - extend(ticket, tokens) grants min(tokens, room left at every tpm and budget counter of
      both scopes, output_cap - output reserved), 0 when nothing is left or the reservation is
      no longer open, adds it at both scopes (in the current tpm second) and renews the lease.
    - refresh(ticket) moves the lease's and reservation's expiry to now + lease_ttl if the
      reservation is still open (True), else changes nothing (False). An open reservation
      lapses when its expiry passes: it no longer extends or refreshes, and the tenant's next
      admission releases its lease and tokens at both scopes and keeps a tombstone of it for
      LAPSE_GRACE_S (so usage() leaves it out at once, extend() may count it until then).
    - settle(ticket, used, event=) charges iff the reservation is still there (open, even past
      its expiry) or its tombstone is, and then removes it, charges ``used`` to the ticket's
      day and month and to total at both scopes, corrects tpm (unused tokens leave the buckets
      they were reserved in, the latest extension's first, then the admission's; tokens beyond
      the reservation count in the current second) and appends ``event`` to the tenant's audit
      stream, all in one step. So a repeated settle is a no-op (False, nothing appended), a
      lapsed one charges once, and one later than LAPSE_GRACE_S after the lapse (or after Redis
      lost its data) charges nothing and returns False: the caller may then record() the event
      itself (the audit writer drops duplicates by request id).
    - record(event, shard_key=) appends an event for a request that was never admitted,
      unless the audit stream of that shard is over its bound (False).
    - seed() sets the budget counters of an unseeded scope to max(existing, ledger) once;
      admit() answers needs_seed while a scope with a budget is unseeded.
    - Times come from the backend's clock (Redis TIME), or from ``now`` (seconds) for tests.
    """

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        """Check every limit at both scopes and, if all pass, reserve atomically."""
        ...

    async def extend(
        self, ticket: Ticket, tokens: int | None = None, *, now: float | None = None
    ) -> Extension:
        """Reserve up to ``tokens`` (default: one output step) more output for a request."""
        ...

    async def refresh(self, ticket: Ticket, *, now: float | None = None) -> bool:
        """Heartbeat: keep the lease and reservation open another lease_ttl; False if lapsed."""
        ...

    async def settle(
        self,
        ticket: Ticket,
        used_tokens: int,
        *,
        event: bytes | None = None,
        now: float | None = None,
    ) -> bool:
        """Replace the reservation by the tokens used and append the event; False if a no-op."""
        ...

    async def record(self, event: bytes, *, shard_key: str) -> bool:
        """Append the event of a request never admitted; False if the queue is over its bound."""
        ...

    async def seed(
        self, subject: Subject, tenant_usage: Usage, key_usage: Usage, *, now: float | None = None
    ) -> None:
        """Rebuild unseeded budget counters from the ledger, once per scope."""
        ...

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        """(tenant, key) usage: settled in the current windows, and reserved in flight."""
        ...

    async def ping(self) -> None:
        """Raise LimitsUnavailable if the backend cannot be reached."""
        ...

    async def close(self) -> None:
        """Release the backend's resources."""
        ...
