"""The Redis backend: one Lua script call (one round trip) per operation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

from redis import exceptions as rexc
from redis.commands.core import AsyncScript

from limits.keyspace import EVENT_SHARDS, EventStream, KeySpace
from limits.pipe import ScriptPipe
from limits.policy import OUTPUT_KINDS, Admission, Ask, Extension, Subject, Ticket, Usage
from limits.protocol import NON_STREAM_OUTPUT_CAP, OUTPUT_RESERVE_STEP, LimitsUnavailable
from limits.redis_client import UNAVAILABLE, AnyRedis, run_script
from limits.settings import Tuning
from limits.verdict import (
    limit_args,
    settle_args,
    to_admission,
    to_extension,
    token_limit_args,
    wanted,
)
from limits.windows import window_ids

UTC = ZoneInfo("UTC")


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except UNAVAILABLE as exc:
        raise LimitsUnavailable(f"redis unavailable: {exc}") from exc
    except rexc.ResponseError as exc:
        if "already in flight" in str(exc):
            raise ValueError("request id already in flight") from exc
        raise


def _lua(name: str) -> str:
    return files("limits").joinpath("lua", name).read_text(encoding="utf-8")


def _ms(now: float | None) -> str:
    return "" if now is None else str(int(now * 1000))


def _numeric(day: str, month: str) -> tuple[int, int]:
    """ "2026-11-26", "2026-11" -> 20261126, 202611: how the scripts store and compare them."""
    return int(day.replace("-", "")), int(month.replace("-", ""))


class RedisLimits:
    """Limits shared by every worker and replica through one Redis (or Redis Cluster)."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        tz: ZoneInfo = UTC,
        namespace: str = "nzgw",
        lease_ttl: float = 900.0,
        output_step: int = OUTPUT_RESERVE_STEP,
        non_stream_cap: int = NON_STREAM_OUTPUT_CAP,
        events_max_bytes: int | None = None,
        owns_client: bool = True,
    ) -> None:
        self._tune = Tuning(lease_ttl, output_step, non_stream_cap, events_max_bytes)
        self._client = client
        # script calls on one server over plain TCP skip redis-py's per-call machinery
        self._scripts_via: AnyRedis | ScriptPipe = ScriptPipe.for_client(client) or client
        self._tz = tz
        self._keys = KeySpace(namespace)
        # the bound is shared evenly by the shards' streams
        self._bound = -1 if events_max_bytes is None else events_max_bytes // EVENT_SHARDS
        self._owns_client = owns_client
        common = _lua("common.lua")
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(common + _lua(f"{name}.lua"))
            for name in ("admit", "extend", "refresh", "settle", "seed", "usage", "record")
        }

    @property
    def keyspace(self) -> KeySpace:
        """The key names this backend uses (the audit writer reads the streams from it)."""
        return self._keys

    def event_streams(self) -> list[EventStream]:
        """Every audit stream of this namespace, with its byte counter."""
        return self._keys.event_streams()

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA straight away (the Script wrapper costs a type check per call); a Redis
        (or cluster node) that lost its script cache gets the script by EVAL, on that node."""
        async with _translated():
            return await run_script(self._scripts_via, self._scripts[name], keys, args)

    def _windows(self, now: float | None) -> tuple[float, str, str]:
        t = time.time() if now is None else now
        return t, *window_ids(t, self._tz)

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        """Check every limit at both scopes and, if all pass, reserve atomically."""
        t, day, month = self._windows(now)
        args: list[Any] = [
            ask.request_id,
            _ms(now),
            ask.prompt_tokens,
            -1 if ask.max_output is None else ask.max_output,
            OUTPUT_KINDS.index(ask.output),
            self._tune.output_step,
            self._tune.non_stream_cap,
            self._tune.ttl_ms,
            self._tune.grace_ms,
            self._bound,
            *_numeric(day, month),
            self._keys.key_field(subject.key_id),
            *limit_args(subject.key),
            *limit_args(subject.tenant),
        ]
        keys = self._keys.admit(subject.tenant_id, subject.key_id)
        raw: Sequence[int] = await self._run("admit", keys, args)
        return to_admission(raw, subject, ask, day=day, month=month, now=t, tz=self._tz)

    async def extend(
        self, ticket: Ticket, tokens: int | None = None, *, now: float | None = None
    ) -> Extension:
        """Reserve up to ``tokens`` (default: one output step) more output for a request."""
        want = wanted(ticket, tokens, self._tune.output_step)
        if want == 0:
            return Extension(granted=0, ticket=ticket)
        _, day, month = self._windows(now)
        args: list[Any] = [
            ticket.request_id,
            _ms(now),
            want,
            self._tune.ttl_ms,
            *_numeric(day, month),
            self._keys.key_field(ticket.key_id),
            *token_limit_args(ticket.subject.key),
            *token_limit_args(ticket.subject.tenant),
        ]
        keys = self._keys.extend(ticket.tenant_id, ticket.key_id)
        raw = await self._run("extend", keys, args)
        return to_extension(ticket, want, raw)

    async def refresh(self, ticket: Ticket, *, now: float | None = None) -> bool:
        """Heartbeat: keep the lease and reservation open another lease_ttl; False if lapsed."""
        keys = self._keys.heads(ticket.tenant_id)
        raw = await self._run("refresh", keys, [ticket.request_id, _ms(now), self._tune.ttl_ms])
        return bool(raw)

    async def settle(
        self,
        ticket: Ticket,
        used_tokens: int,
        *,
        event: bytes | None = None,
        now: float | None = None,
    ) -> bool:
        """Replace the reservation by the tokens used and append the event; False if a no-op."""
        if used_tokens < 0:
            raise ValueError("used_tokens must be >= 0")
        args: list[Any] = [
            ticket.request_id,
            used_tokens,
            _ms(now),
            *_numeric(ticket.day, ticket.month),
            self._keys.key_field(ticket.key_id),
            *settle_args(ticket),
        ]
        if event is not None:
            args.append(event)
        keys = self._keys.settle(ticket.tenant_id, ticket.key_id)
        raw = await self._run("settle", keys, args)
        return bool(raw)

    async def record(self, event: bytes, *, shard_key: str) -> bool:
        """Append the event of a request never admitted; False if the queue is over its bound."""
        raw = await self._run("record", self._keys.record(shard_key), [event, self._bound])
        return bool(raw)

    async def seed(
        self, subject: Subject, tenant_usage: Usage, key_usage: Usage, *, now: float | None = None
    ) -> None:
        """Set unseeded counters to max(existing, given) and mark both scopes seeded."""
        _, day, month = self._windows(now)
        args: list[Any] = [
            *_numeric(day, month),
            self._keys.key_field(subject.key_id),
            key_usage.day,
            key_usage.month,
            key_usage.total,
            tenant_usage.day,
            tenant_usage.month,
            tenant_usage.total,
        ]
        await self._run("seed", self._keys.heads(subject.tenant_id), args)

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        """(tenant, key) usage: settled in the current windows, and reserved in flight."""
        _, day, month = self._windows(now)
        keys = self._keys.heads(subject.tenant_id)
        args = [_ms(now), *_numeric(day, month), self._keys.key_field(subject.key_id)]
        raw: Sequence[int] = await self._run("usage", keys, args)
        v = [int(x) for x in raw]
        return Usage(*v[4:8]), Usage(*v[0:4])

    async def ping(self) -> None:
        """Raise LimitsUnavailable if Redis does not answer."""
        async with _translated():
            await self._client.ping()

    async def close(self) -> None:
        """Close the script pipe, and the client if this backend owns it (the default)."""
        if isinstance(self._scripts_via, ScriptPipe):
            await self._scripts_via.aclose()
        if self._owns_client:
            await self._client.aclose()
