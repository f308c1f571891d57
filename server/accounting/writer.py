"""The audit writer: takes batches off the queue, stores them, acknowledges only what committed.

A batch the database cannot take (unreachable, overloaded, not migrated) is held and retried
with exponential back-off, its entries kept claimed, while the queue holds the rest; a batch it
refuses is stored row by row and each row still refused (or an entry that is no event) goes to
the dead letters. Between batches the writer purges expired prompt logs in bounded batches.
`stop(grace)` ends it: it writes on until the queue has been empty for `linger` s or the grace
is over; what it could not write stays queued (in Redis, for the next writer to claim).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from loguru import logger

from server.accounting.event import PROMPT_MAX_CHARS, BadEvent, decode_event
from server.accounting.purge import purge_expired_prompts
from server.accounting.record import RequestRecord, now_utc
from server.accounting.source import Entry, EventSource
from server.accounting.store import StoreUnavailable, describe, store

Purge = Callable[[datetime], Awaitable[int]]
REPORT_EVERY = 30.0  # s between log lines while the database stays away


@dataclass
class WriterStats:
    """What one writer did, and whether it is waiting for the database."""

    written: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    retries: int = 0
    down_since: float | None = None  # time.time() of the first failure of the current outage
    last_error: str | None = None


class Writer:
    """One consumer of the audit queue, writing to the database of this process (Tortoise)."""

    def __init__(
        self,
        source: EventSource,
        *,
        postgres: bool,
        batch: int = 500,
        block: float = 1.0,
        gather: float = 0.05,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
        purge_every: float = 60.0,
        purge: Purge | None = purge_expired_prompts,
        linger: float = 1.0,
        prompt_max: int = PROMPT_MAX_CHARS,
    ) -> None:
        self.source = source
        self.postgres = postgres
        self.batch = batch
        self.block = block
        self.gather = gather
        self.retry_min, self.retry_max = retry_min, retry_max
        self.purge_every = purge_every
        self.purge = purge
        self.linger = linger
        self.prompt_max = prompt_max
        self.stats = WriterStats()
        self._lock = asyncio.Lock()  # one batch at a time (run and flush)
        self._holding = False  # run() took a batch it has not written yet
        self._delay = retry_min
        self._deadline: float | None = None  # set by stop()
        self._wake = asyncio.Event()
        self._last_purge = float("-inf")
        self._last_report = float("-inf")

    @property
    def stopping(self) -> bool:
        """Whether stop() was called."""
        return self._deadline is not None

    def stop(self, grace: float = 10.0) -> None:
        """Ask run() to drain for at most `grace` s and return."""
        if self._deadline is None:
            self._deadline = time.monotonic() + grace
        self._wake.set()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    async def run(self) -> None:
        """Write until stop(), then drain; never raises for a database or queue failure."""
        held: list[Entry] = []
        prepared = False
        idle_since: float | None = None
        while not self._past_deadline():
            try:
                if not prepared:
                    await self.source.prepare()
                    held, prepared = await self.source.abandoned(), True
                if not held:
                    if (
                        self.stopping
                        and idle_since
                        and time.monotonic() - idle_since >= self.linger
                    ):
                        return
                    held = await self._next_batch()
                    if not held:
                        idle_since = idle_since or time.monotonic()
                        await self._purge_now_and_then()
                        continue
                    idle_since = None
                async with self._lock:
                    await self._write(held)
                held = []
                self._holding = False
                self._recovered()
            except StoreUnavailable as exc:
                await self._failed("database", str(exc), held)
            except Exception as exc:  # noqa: BLE001 - the queue (Redis) failed; the loop goes on
                await self._failed("queue", describe(exc), held)
        if held or self.stopping:
            self._log_leftover(len(held))

    async def _next_batch(self) -> list[Entry]:
        block = min(self.block, 0.1) if self.stopping else self.block
        entries = await self.source.take(self.batch, block)
        self._holding = bool(entries)
        if entries and len(entries) < self.batch and self.gather > 0 and not self.stopping:
            await asyncio.sleep(self.gather)  # let a few more arrive: fewer, larger transactions
            entries += await self.source.take(self.batch - len(entries), 0)
        return entries

    async def flush(self, within: float | None = None) -> bool:
        """Write everything queued now (and anything a stopped writer left taken), for at most
        `within` s; False if the database could not take it or time ran out (the rest stays
        queued for the next writer)."""
        end = None if within is None else time.monotonic() + within
        for _ in range(200):  # a batch run() already took is written by run() itself
            if not self._holding:
                break
            await asyncio.sleep(0.01)
        async with self._lock:
            try:
                batch = await self.source.abandoned()
                while True:
                    if not batch:
                        if end is not None and time.monotonic() >= end:
                            logger.warning("audit flush out of time; the rest stays queued")
                            return False
                        batch = await self.source.take(self.batch, 0)
                        if not batch:
                            break
                    await self._write(batch)
                    batch = []
            except Exception as exc:  # noqa: BLE001 - reported, the events stay queued
                where = "database" if isinstance(exc, StoreUnavailable) else "queue"
                logger.warning("audit flush failed ({} unavailable: {})", where, describe(exc))
                return False
        return True

    async def _write(self, entries: Sequence[Entry]) -> None:
        """Store one batch; dead-letter what cannot be stored; acknowledge the rest."""
        decoded: list[tuple[Entry, RequestRecord]] = []
        refused: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                decoded.append((entry, decode_event(entry.data, prompt_max=self.prompt_max)))
            except BadEvent as exc:
                refused.append((entry, f"not an audit event: {exc}"))
        result = await store([r for _, r in decoded], postgres=self.postgres)
        rejected = {index for index, _ in result.rejected}
        refused += [
            (decoded[i][0], f"refused by the database: {why}") for i, why in result.rejected
        ]
        self.stats.written += result.inserted  # committed, whatever becomes of the acks
        self.stats.duplicates += result.duplicates
        for entry, why in refused:
            await self.source.dead_letter(entry, why)
            self.stats.dead_letters += 1
            rid = next((r.request_id for e, r in decoded if e is entry), "?")
            logger.error("audit event {} set aside as a dead letter: {}", rid, why)
        await self.source.ack([e for i, (e, _) in enumerate(decoded) if i not in rejected])

    def _recovered(self) -> None:
        if self.stats.down_since is not None:
            away = time.time() - self.stats.down_since
            logger.info("audit writer: writing again after {:.0f} s", away)
        self.stats.down_since = None
        self.stats.last_error = None
        self._delay = self.retry_min

    async def _failed(self, what: str, error: str, held: Sequence[Entry]) -> None:
        """Report (now and then), keep the held entries claimed, and back off."""
        self.stats.retries += 1
        self.stats.last_error = f"{what} unavailable: {error}"
        now = time.monotonic()
        first = self.stats.down_since is None
        if first:
            self.stats.down_since = time.time()
        if first or now - self._last_report >= REPORT_EVERY:
            self._last_report = now
            backlog = await self._backlog()
            logger.warning(
                "audit writer: {} unavailable ({}); {} events wait in the queue, retrying",
                what,
                error,
                backlog,
            )
        if held:
            try:
                await self.source.touch(held)
            except Exception:  # noqa: BLE001,S110 - the queue is down too; claims will sort it out
                pass
        delay = self._delay
        if self._deadline is not None:
            delay = max(0.0, min(delay, self._deadline - now))
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except TimeoutError:
            pass
        self._delay = min(self._delay * 2, self.retry_max)

    async def _backlog(self) -> str:
        try:
            return str((await self.source.status()).backlog)
        except Exception:  # noqa: BLE001 - the queue itself may be the failure
            return "an unknown number of"

    async def _purge_now_and_then(self) -> None:
        if self.purge is None or time.monotonic() - self._last_purge < self.purge_every:
            return
        self._last_purge = time.monotonic()
        try:
            removed = await self.purge(now_utc())
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            logger.warning("prompt log purge failed ({})", describe(exc))
            return
        if removed:
            logger.info("purged {} expired prompt logs", removed)

    def _log_leftover(self, held: int) -> None:
        if held:
            logger.warning(
                "audit writer stopped with {} events not yet written; they stay queued", held
            )

    async def status(self) -> dict[str, object]:
        """The queue's status and this writer's, for /readyz detail and /metrics."""
        queue = (await self.source.status()).as_dict()
        return {**queue, "writer": asdict(self.stats)}
