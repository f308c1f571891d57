"""The Redis backend: one Lua script call (one round trip) per admit, settle, seed or usage."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

from redis import exceptions as rexc
from redis.asyncio import Redis

from limits.keyspace import KeySpace
from limits.verdict import limit_args, to_admission
from limits.policy import Admission, Ask, Subject, Ticket, Usage
from limits.protocol import LimitsUnavailable
from limits.windows import DAY_TTL_S, MONTH_TTL_S, window_ids

UTC = ZoneInfo("UTC")

# redis-py's errors that mean "Redis cannot serve us now" (BusyLoadingError is a ConnectionError)
_UNAVAILABLE: tuple[type[Exception], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.MasterDownError,
    rexc.ReadOnlyError,
    OSError,
)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise LimitsUnavailable(f"redis unavailable: {exc}") from exc


def _lua(name: str) -> str:
    return files("limits").joinpath("lua", name).read_text(encoding="utf-8")


def _ms(now: float | None) -> str:
    return "" if now is None else str(int(now * 1000))


class RedisLimits:
    """Limits shared by every worker and replica through one Redis (or Redis Cluster slot)."""

    def __init__(
        self,
        client: Redis,
        *,
        tz: ZoneInfo = UTC,
        namespace: str = "nzgw",
        lease_ttl: float = 900.0,
        default_output_reserve: int | None = None,
        owns_client: bool = True,
    ) -> None:
        self._client = client
        self._tz = tz
        self._keys = KeySpace(namespace)
        self._lease_ttl_ms = int(lease_ttl * 1000)
        self._default_reserve = -1 if default_output_reserve is None else default_output_reserve
        self._owns_client = owns_client
        self._admit = client.register_script(_lua("admit.lua"))
        self._settle = client.register_script(_lua("settle.lua"))
        self._seed = client.register_script(_lua("seed.lua"))
        self._usage = client.register_script(_lua("usage.lua"))

    def _windows(self, now: float | None) -> tuple[float, str, str]:
        t = time.time() if now is None else now
        return t, *window_ids(t, self._tz)

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        """Check every limit at both scopes and, if all pass, reserve atomically."""
        t, day, month = self._windows(now)
        keys = self._keys.admit(subject.tenant_id, subject.key_id, day, month)
        args: list[Any] = [
            ask.request_id,
            _ms(now),
            ask.prompt_tokens,
            -1 if ask.max_output is None else ask.max_output,
            self._default_reserve,
            self._lease_ttl_ms,
            *limit_args(subject.key),
            *limit_args(subject.tenant),
        ]
        async with _translated():
            raw: Sequence[int] = await self._admit(keys=keys, args=args)
        return to_admission(raw, subject, ask, day=day, month=month, now=t, tz=self._tz)

    async def settle(self, ticket: Ticket, used_tokens: int, *, now: float | None = None) -> None:
        """Release the leases and reservation and charge ``used_tokens``; a repeat is a no-op."""
        if used_tokens < 0:
            raise ValueError("used_tokens must be >= 0")
        keys = self._keys.settle(ticket.tenant_id, ticket.key_id, ticket.day, ticket.month)
        args: list[Any] = [
            ticket.request_id,
            used_tokens,
            ticket.reserved,
            ticket.at_ms,
            int(ticket.tpm_key),
            int(ticket.tpm_tenant),
            _ms(now),
            self._lease_ttl_ms,
            DAY_TTL_S,
            MONTH_TTL_S,
        ]
        async with _translated():
            await self._settle(keys=keys, args=args)

    async def seed(
        self, subject: Subject, tenant_usage: Usage, key_usage: Usage, *, now: float | None = None
    ) -> None:
        """Set unseeded counters to max(existing, given) and mark both scopes seeded."""
        _, day, month = self._windows(now)
        keys = self._keys.seed(subject.tenant_id, subject.key_id, day, month)
        args: list[Any] = [
            key_usage.day,
            key_usage.month,
            key_usage.total,
            tenant_usage.day,
            tenant_usage.month,
            tenant_usage.total,
            DAY_TTL_S,
            MONTH_TTL_S,
        ]
        async with _translated():
            await self._seed(keys=keys, args=args)

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        """(tenant, key) usage: settled plus live reservations, in the current windows."""
        _, day, month = self._windows(now)
        keys = self._keys.usage(subject.tenant_id, subject.key_id, day, month)
        async with _translated():
            raw: Sequence[int] = await self._usage(keys=keys, args=[_ms(now)])
        kd, km, kt, td, tm, tt = (int(v) for v in raw)
        return Usage(td, tm, tt), Usage(kd, km, kt)

    async def ping(self) -> None:
        """Raise LimitsUnavailable if Redis does not answer."""
        async with _translated():
            await self._client.ping()

    async def close(self) -> None:
        """Close the client if this backend owns it (the default)."""
        if self._owns_client:
            await self._client.aclose()
