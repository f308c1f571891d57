"""Writing audit events to the database: idempotent on the request id, the ledger once per event.

One transaction per batch inserts the audit rows with ON CONFLICT (request_id) DO NOTHING and
RETURNING the ids it inserted; only those rows add their usage to the UsageDaily ledger and
store their prompt log, in the same transaction. So an event delivered twice (a redelivery, a
claim racing a slow writer) is one row and is counted once. A batch the database refuses for
its data is retried row by row: the rows that still fail come back as rejected, with why; a
database that cannot be reached (or is not migrated yet) raises StoreUnavailable and nothing of
the batch is lost.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentError
from loguru import logger
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import DBConnectionError, TransactionManagementError

from server.accounting.record import RequestRecord

AUDIT_COLUMNS = (
    "request_id",
    "client_request_id",
    "time",
    "tenant_id",
    "key_id",
    "key_prefix",
    "surface",
    "method",
    "path",
    "model",
    "backend",
    "status",
    "latency_ms",
    "ttfb_ms",
    "prompt_tokens",
    "completion_tokens",
    "tokens_estimated",
    "client_ip",
    "user_agent",
    "error",
    "limit",
)
PROMPT_COLUMNS = (
    "request_id",
    "key_id",
    "created_at",
    "request_body",
    "response_text",
    "expires_at",
)
LEDGER_COLUMNS = (
    "tenant_id",
    "key_id",
    "day",
    "model",
    "requests",
    "prompt_tokens",
    "completion_tokens",
)

# Failures that say nothing about the rows: the database is away, overloaded, shutting down, or
# its schema is not there yet. The batch waits; everything else is a verdict on the data.
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    DBConnectionError,
    TransactionManagementError,
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.SyntaxOrAccessError,
    asyncpg.InterfaceError,  # "connection is closed" and the like (not its DataError)
)


class StoreUnavailable(Exception):
    """The database cannot take the batch now; retry it later, unchanged."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of a batch: rows inserted, duplicates skipped, rows refused (index, why)."""

    inserted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's exception under Tortoise's translation, if there is one."""
    for inner in (exc.__cause__, *(a for a in exc.args if isinstance(a, BaseException))):
        if isinstance(inner, BaseException):
            return inner
    return exc


def is_outage(exc: BaseException) -> bool:
    """Whether a failure is the database's state rather than a verdict on the rows."""
    inner = _driver_error(exc)
    data = (asyncpg.DataError, ArgumentError, asyncpg.IntegrityConstraintViolationError)
    if isinstance(inner, data):
        return False
    return isinstance(exc, _OUTAGES) or isinstance(inner, _OUTAGES)


def describe(exc: BaseException) -> str:
    """One line naming a failure: its driver class and message, bounded."""
    inner = _driver_error(exc)
    text = " ".join(str(inner).split())
    return f"{type(inner).__name__}: {text}"[:500]


class _Dialect:
    """Placeholders and the ledger upsert of one database dialect."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def marks(self, start: int, count: int) -> str:
        if self.postgres:
            return "(" + ", ".join(f"${i}" for i in range(start, start + count)) + ")"
        return "(" + ", ".join("?" * count) + ")"

    def values(self, rows: int, width: int) -> str:
        return ", ".join(self.marks(1 + r * width, width) for r in range(rows))

    def upsert(self) -> str:
        columns = ", ".join(f'"{c}"' for c in LEDGER_COLUMNS)
        # Column names are module constants and values are bound placeholders.
        return (
            f"INSERT INTO usage_daily ({columns}) VALUES {self.marks(1, 7)} "  # nosec B608
            'ON CONFLICT ("key_id", "day", "model") DO UPDATE SET '
            "requests = usage_daily.requests + excluded.requests, "
            "prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, "
            "completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens"
        )


def _audit_row(r: RequestRecord) -> list[Any]:
    return [
        r.request_id,
        r.client_request_id,
        r.time,
        r.tenant_id,
        r.key_id,
        r.key_prefix,
        r.surface,
        r.method,
        r.path,
        r.model or None,
        r.backend,
        r.status,
        r.latency_ms,
        r.ttfb_ms,
        r.prompt_tokens,
        r.completion_tokens,
        r.tokens_estimated,
        r.client_ip,
        r.user_agent,
        r.error,
        r.limit,
    ]


def _ledger(batch: Sequence[RequestRecord]) -> dict[tuple[int, int, date, str], list[int]]:
    rows: defaultdict[tuple[int, int, date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in batch:
        if r.usage_day is None or r.key_id is None or r.tenant_id is None:
            continue
        row = rows[(r.tenant_id, r.key_id, date.fromisoformat(r.usage_day), r.model or "")]
        row[0] += 1
        row[1] += r.prompt_tokens
        row[2] += r.completion_tokens
    return dict(rows)


async def _insert(
    tx: BaseDBAsyncClient | _Pg, dialect: _Dialect, batch: list[RequestRecord]
) -> int:
    """Insert one batch (unique request ids) in `tx`; returns how many rows were new."""
    columns = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
    # Column names are module constants; every value is a bound placeholder.
    sql = (
        f"INSERT INTO audit_events ({columns}) VALUES "  # nosec B608
        f"{dialect.values(len(batch), len(AUDIT_COLUMNS))} "
        'ON CONFLICT ("request_id") DO NOTHING RETURNING "request_id"'
    )
    returned = await tx.execute_query_dict(sql, [v for r in batch for v in _audit_row(r)])
    new_ids = {row["request_id"] for row in returned}
    new = [r for r in batch if r.request_id in new_ids]
    for (tenant, key, day, model), counts in _ledger(new).items():
        await tx.execute_query(dialect.upsert(), [tenant, key, day, model, *counts])
    logged = [r for r in new if r.prompt is not None and r.key_id is not None]
    if logged:
        columns = ", ".join(f'"{c}"' for c in PROMPT_COLUMNS)
        marks = dialect.values(len(logged), 6)
        sql = f"INSERT INTO prompt_logs ({columns}) VALUES {marks}"  # nosec B608
        params: list[Any] = []
        for r in logged:
            assert r.prompt is not None
            expires = r.time + timedelta(days=r.prompt.ttl_days)
            params += [r.request_id, r.key_id, r.time, r.prompt.request_body]
            params += [r.prompt.response_text, expires]
        await tx.execute_query(sql, params)
    return len(new)


class _Pg:
    """An asyncpg connection with the two calls `_insert` makes of a Tortoise client."""

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    async def execute_query_dict(self, sql: str, values: list[Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.raw.fetch(sql, *values)]

    async def execute_query(self, sql: str, values: list[Any]) -> None:
        await self.raw.execute(sql, *values)


async def _transaction(dialect: _Dialect, batch: list[RequestRecord]) -> int:
    conn = connections.get("default")
    if not dialect.postgres:
        async with conn._in_transaction() as tx:
            return await _insert(tx, dialect, batch)
    # PostgreSQL: the connection and transaction are asyncpg's own. Tortoise's transaction
    # context, when BEGIN fails on a connection that died, leaves its context variable on the
    # dead wrapper and the connection never released, so every later batch of this task fails
    # ("connection has been released back to the pool") and the pool shrinks by one.
    async with conn.acquire_connection() as raw, raw.transaction():
        return await _insert(_Pg(raw), dialect, batch)


async def _one_transaction(dialect: _Dialect, batch: list[RequestRecord]) -> int:
    try:
        return await _transaction(dialect, batch)
    except Exception as exc:
        if is_outage(exc):
            raise StoreUnavailable(describe(exc)) from exc
        raise


async def store(batch: Sequence[RequestRecord], *, postgres: bool) -> Stored:
    """Write a batch in one transaction, or row by row if the database refuses it.

    Returns what was inserted, skipped as already there, and refused (the index in `batch`
    and why); raises StoreUnavailable when the database cannot be reached, whatever part of
    the batch is already committed (a retry inserts the rest and skips that part).
    """
    dialect = _Dialect(postgres)
    first: dict[str, int] = {}
    for i, r in enumerate(batch):
        first.setdefault(r.request_id, i)
    unique = [batch[i] for i in first.values()]
    repeated = len(batch) - len(unique)
    if not unique:
        return Stored()
    try:
        inserted = await _one_transaction(dialect, unique)
    except StoreUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - a verdict on some row: find it, row by row
        logger.info(
            "audit batch of {} refused ({}); storing row by row", len(unique), describe(exc)
        )
    else:
        return Stored(inserted, len(batch) - inserted)
    inserted, rejected = 0, []
    for index, r in zip(first.values(), unique, strict=True):
        try:
            inserted += await _one_transaction(dialect, [r])
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - this row is refused; the rest go on
            rejected.append((index, describe(exc)))
    return Stored(inserted, len(unique) - inserted - len(rejected) + repeated, rejected)
