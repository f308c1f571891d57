"""A worker's in-process audit queue and its writer (no Redis: the embedded default).

close_request hands each request's record to `record`, which queues its event bytes; `run` is
the writer task; `flush` writes what is queued (shutdown, tests). With Redis the events go to
the streams instead (settle appends them) and a writer over the streams runs per replica.
"""

from __future__ import annotations

from limits import EventQueue as LimitsQueue
from server.accounting.event import encode_event
from server.accounting.local_queue import LocalQueue, LocalSource
from server.accounting.record import RequestRecord
from server.accounting.writer import Writer

IN_WORKER_BATCH = 100


class Recorder:
    """Queues records as event bytes in this process and writes them in batches."""

    def __init__(self, *, postgres: bool, queue: LocalQueue | LimitsQueue | None = None) -> None:
        self.queue = queue if queue is not None else LocalQueue()
        self.source = LocalSource(self.queue)
        # a task in a request worker: smaller batches keep each stall of its event loop short
        self.writer = Writer(self.source, postgres=postgres, batch=IN_WORKER_BATCH)

    def record(self, rec: RequestRecord) -> None:
        """Queue one record; never blocks, never raises for odd input."""
        self.queue.append(encode_event(rec))

    def append(self, event: bytes) -> None:
        """Queue event bytes already encoded (the fallback when Redis refused them)."""
        self.queue.append(event)

    async def run(self, interval: float) -> None:
        """The writer task: waits up to `interval` s for events, writes until cancelled."""
        self.writer.block = interval
        await self.writer.run()

    async def flush(self) -> bool:
        """Write everything queued now; False if the database could not take it."""
        return await self.writer.flush()

    async def status(self) -> dict[str, object]:
        """The queue's backlog and dead letters and the writer's state."""
        return await self.writer.status()

    def __len__(self) -> int:
        return len(self.queue)
