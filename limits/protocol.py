"""The storage protocol every limits backend implements, and its one error."""

from __future__ import annotations

from typing import Protocol

from limits.policy import Admission, Ask, Subject, Ticket, Usage


class LimitsUnavailable(Exception):
    """The backend cannot be reached; the caller fails closed (503)."""


class LimitsBackend(Protocol):
    """Rate limits, concurrency leases and token budgets for a tenant and one of its keys."""

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
