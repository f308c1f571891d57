"""A worker's in-process audit queue and its writer (no Redis: the embedded default).

close_request hands each request's record to `record`, which queues its event bytes; `run` is
the writer task; `flush` writes what is queued (shutdown, tests). With Redis the events go to
the streams instead (settle appends them) and a writer over the streams runs per replica; this
queue then only holds the events Redis could not take (it was away, or its bound was reached),
up to `max_bytes`: past that an event is dropped, counted (`lost`, in /readyz detail) and
logged, never silently.
"""

from __future__ import annotations

import time

from loguru import logger

from limits import EventQueue
from server.accounting.event import encode_event
from server.accounting.local_queue import LocalSource
from server.accounting.record import RequestRecord
from server.accounting.writer import Writer

IN_WORKER_BATCH = 100
LOST_REPORT_EVERY = 10.0  # s between log lines while events are being dropped


class Recorder:
    """Queues records as event bytes in this process and writes them in batches."""

    def __init__(
        self,
        *,
        postgres: bool,
        queue: EventQueue | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.queue = queue if queue is not None else EventQueue(max_bytes)
        self.max_bytes = max_bytes
        self.source = LocalSource(self.queue)
        # a task in a request worker: smaller batches keep each stall of its event loop short
        self.writer = Writer(self.source, postgres=postgres, batch=IN_WORKER_BATCH)
        self.lost = 0
        self._reported = float("-inf")

    def record(self, rec: RequestRecord) -> None:
        """Queue one record; never blocks, never raises for odd input."""
        self.append(encode_event(rec))

    def append(self, event: bytes) -> bool:
        """Queue event bytes already encoded; False (counted, logged) past the bound."""
        if self.max_bytes is not None and self.queue.size_bytes + len(event) > self.max_bytes:
            self.lost += 1
            now = time.monotonic()
            if now - self._reported >= LOST_REPORT_EVERY:
                self._reported = now
                logger.error(
                    "audit queue of this worker is full ({} bytes): {} events lost so far",
                    self.queue.size_bytes,
                    self.lost,
                )
            return False
        self.queue.append(event)
        return True

    async def run(self, interval: float) -> None:
        """The writer task: waits up to `interval` s for events, writes until cancelled."""
        self.writer.block = interval
        await self.writer.run()

    async def flush(self) -> bool:
        """Write everything queued now; False if the database could not take it."""
        return await self.writer.flush()

    async def status(self) -> dict[str, object]:
        """The queue's backlog and dead letters, the events lost at its bound, the writer."""
        return {**await self.writer.status(), "lost": self.lost}

    def __len__(self) -> int:
        return len(self.queue)
