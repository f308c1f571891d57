"""The storage protocol every limits backend implements, and its one error."""

from __future__ import annotations

from typing import Protocol

from limits.policy import Admission, Ask, Subject, Ticket, Usage


class LimitsUnavailable(Exception):
    """The backend cannot be reached; the caller fails closed (503)."""


class LimitsBackend(Protocol):
    """Rate limits, concurrency leases and token budgets for a tenant and one of its keys.

    Decisions the two backends share (RedisLimits in Lua, MemoryLimits in Python):

    - Both scopes must pass; a denial reserves nothing. The reported denial is the first
      failing limit in the order total, monthly, daily, requests, tokens, concurrency, the key
      scope before the tenant scope for each limit: spent budgets come first because waiting
      does not help them (should_retry False).
    - rpm: an exact rolling 60 s log; tpm: per-second buckets over the last 60 s. retry_after
      for them is the exact wait until enough entries leave the window; reset_* in RateInfo is
      the wait until remaining_* next grows.
    - Every admission records a reservation (request_id -> reserved tokens, expiring after
      lease_ttl) at both scopes, budget or not, so usage is always counted and settle is
      idempotent. Live reservations count against the current day, month and total windows.
    - settle charges ``used_tokens`` to the day and month of the admission (the ticket's),
      removes the leases and reservations and corrects the admission's tpm bucket. Settled
      request ids are remembered for lease_ttl: a repeated settle within that time is a no-op;
      a settle after the reservation lapsed still charges once.
    - request_id must be unique per request (it names the rpm entry, lease and reservation).
    """

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        """Check every limit at both scopes and, if all pass, reserve atomically."""
        ...

    async def settle(self, ticket: Ticket, used_tokens: int, *, now: float | None = None) -> None:
        """Replace the reservation of an admitted request by the tokens it really used."""
        ...

    async def seed(
        self, subject: Subject, tenant_usage: Usage, key_usage: Usage, *, now: float | None = None
    ) -> None:
        """Rebuild unseeded budget counters from the ledger, once per scope."""
        ...

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        """(tenant, key) usage: settled plus live reservations, in the current windows."""
        ...

    async def ping(self) -> None:
        """Raise LimitsUnavailable if the backend cannot be reached."""
        ...

    async def close(self) -> None:
        """Release the backend's resources."""
        ...
