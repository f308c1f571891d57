"""Off-path recording: audit events, prompt logs and the UsageDaily ledger, written in batches."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import date, timedelta

from loguru import logger
from tortoise import connections

from models import AuditEvent, PromptLog
from server.accounting.purge import purge_expired_prompts
from server.accounting.record import RequestRecord, now_utc

MAX_BUFFER = 100_000
BATCH = 500


class Recorder:
    """Buffers records in the worker and writes them in batches; holds them while the DB is down."""

    def __init__(self, *, postgres: bool) -> None:
        self._buffer: list[RequestRecord] = []
        self._postgres = postgres
        self._wake = asyncio.Event()
        self.dropped = 0

    def record(self, rec: RequestRecord) -> None:
        """Queue one record; never blocks, never raises."""
        if len(self._buffer) >= MAX_BUFFER:
            self.dropped += 1
            return
        self._buffer.append(rec)
        if len(self._buffer) >= BATCH:
            self._wake.set()

    async def run(self, interval: float, purge_every: float = 60.0) -> None:
        """Flush for ever, every `interval` seconds or when a batch is full; purge expired prompts."""
        last_purge = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
            if time.monotonic() - last_purge >= purge_every:
                last_purge = time.monotonic()
                await self._purge()

    async def _purge(self) -> None:
        try:
            removed = await purge_expired_prompts(now_utc())
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            logger.warning("prompt log purge failed ({})", type(exc).__name__)
            return
        if removed:
            logger.info("purged {} expired prompt logs", removed)

    async def flush(self) -> bool:
        """Write everything buffered; on failure keep it for the next try."""
        while self._buffer:
            batch = self._buffer[:BATCH]
            try:
                await _write(batch, postgres=self._postgres)
            except Exception as exc:  # noqa: BLE001 - keep the records and the task alive
                logger.warning(
                    "audit/usage write failed ({}: {}); {} records held",
                    type(exc).__name__,
                    str(exc)[:200],
                    len(self._buffer),
                )
                return False
            del self._buffer[: len(batch)]
        return True

    def __len__(self) -> int:
        return len(self._buffer)


async def _write(batch: list[RequestRecord], *, postgres: bool) -> None:
    conn = connections.get("default")
    async with conn._in_transaction() as tx:
        await AuditEvent.bulk_create([_audit(r) for r in batch], using_db=tx)
        prompts = [_prompt(r) for r in batch if r.prompt is not None and r.key_id is not None]
        if prompts:
            await PromptLog.bulk_create(prompts, using_db=tx)
        for (key_id, tenant_id, day), (n, p, c) in _ledger_rows(batch).items():
            await tx.execute_query(_upsert_sql(postgres), [tenant_id, key_id, day, n, p, c])


def _audit(r: RequestRecord) -> AuditEvent:
    return AuditEvent(
        request_id=r.request_id,
        client_request_id=r.client_request_id,
        time=r.time,
        tenant_id=r.tenant_id,
        key_id=r.key_id,
        key_prefix=r.key_prefix,
        surface=r.surface,
        method=r.method,
        path=r.path[:2048],
        model=(r.model or None) and r.model[:255],
        backend=r.backend,
        status=r.status,
        latency_ms=r.latency_ms,
        ttfb_ms=r.ttfb_ms,
        prompt_tokens=r.prompt_tokens,
        completion_tokens=r.completion_tokens,
        tokens_estimated=r.tokens_estimated,
        client_ip=r.client_ip,
        user_agent=(r.user_agent or None) and r.user_agent[:512],
        error=r.error,
        limit=r.limit,
    )


def _prompt(r: RequestRecord) -> PromptLog:
    assert r.prompt is not None and r.key_id is not None
    return PromptLog(
        request_id=r.request_id,
        key_id=r.key_id,
        request_body=r.prompt.request_body,
        response_text=r.prompt.response_text,
        expires_at=r.time + timedelta(days=r.prompt.ttl_days),
    )


def _ledger_rows(batch: list[RequestRecord]) -> dict[tuple[int, int, date], list[int]]:
    rows: defaultdict[tuple[int, int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in batch:
        if r.usage_day is None or r.key_id is None or r.tenant_id is None:
            continue
        row = rows[(r.key_id, r.tenant_id, date.fromisoformat(r.usage_day))]
        row[0] += 1
        row[1] += r.prompt_tokens
        row[2] += r.completion_tokens
    return dict(rows)


def _upsert_sql(postgres: bool) -> str:
    marks = ("$1", "$2", "$3", "$4", "$5", "$6") if postgres else ("?",) * 6
    return (
        "INSERT INTO usage_daily (tenant_id, key_id, day, requests, prompt_tokens, "
        f"completion_tokens) VALUES ({', '.join(marks)}) ON CONFLICT (key_id, day) DO UPDATE SET "
        "requests = usage_daily.requests + excluded.requests, "
        "prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens"
    )
