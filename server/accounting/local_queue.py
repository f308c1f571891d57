"""The in-process audit queue (no Redis: the embedded default) and the writer's view of it.

LocalQueue has the reader API of limits' in-process event queue (MemoryLimits.events: append,
take, pending, ack, size_bytes, wait); it stands in for it until that lands, and LocalSource
reads either. Dead letters stay in this process: counted, logged, the newest kept in memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from loguru import logger

from limits import QueuedEvent
from server.accounting.source import Entry, QueueStatus

KEPT_DEAD_LETTERS = 1000


class EventQueue(Protocol):
    """The reader API of an in-process event queue."""

    @property
    def size_bytes(self) -> int: ...

    def __len__(self) -> int: ...

    def take(self, limit: int) -> Sequence[QueuedEvent]: ...

    def pending(self) -> Sequence[QueuedEvent]: ...

    def ack(self, ids: Iterable[int]) -> int: ...

    async def wait(self, timeout: float) -> bool: ...


class LocalQueue:
    """Events queued in this process, byte-counted; taken events stay pending until acked."""

    def __init__(self) -> None:
        self._queued: deque[QueuedEvent] = deque()
        self._pending: dict[int, QueuedEvent] = {}
        self._next = 1
        self._bytes = 0
        self._signal = asyncio.Event()

    @property
    def size_bytes(self) -> int:
        """Bytes of the events queued or pending."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._queued) + len(self._pending)

    def append(self, data: bytes) -> None:
        """Queue one event."""
        self._queued.append(QueuedEvent(self._next, data))
        self._next += 1
        self._bytes += len(data)
        self._signal.set()

    def take(self, limit: int) -> list[QueuedEvent]:
        """Up to `limit` of the oldest queued events, pending until acked."""
        batch: list[QueuedEvent] = []
        while self._queued and len(batch) < limit:
            event = self._queued.popleft()
            self._pending[event.id] = event
            batch.append(event)
        return batch

    def pending(self) -> list[QueuedEvent]:
        """Events taken and not acked, oldest first."""
        return list(self._pending.values())

    def ack(self, ids: Iterable[int]) -> int:
        """Forget written events; how many were pending."""
        done = 0
        for i in ids:
            event = self._pending.pop(i, None)
            if event is not None:
                self._bytes -= len(event.data)
                done += 1
        return done

    async def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a queued event; True if one is there."""
        if not self._queued:
            self._signal.clear()
            try:
                await asyncio.wait_for(self._signal.wait(), timeout)
            except TimeoutError:
                return False
        return True


def _summary(data: bytes) -> str:
    """The event without its prompt log, for the log line of a dead letter."""
    try:
        event = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        return f"<{len(data)} bytes, not JSON>"
    if not isinstance(event, dict):
        return f"<{len(data)} bytes, not an object>"
    event.pop("prompt", None)
    return json.dumps(event, ensure_ascii=True)[:4000]


class LocalSource:
    """The writer's view of an in-process queue."""

    def __init__(self, queue: EventQueue) -> None:
        self.queue = queue
        self.dead: deque[tuple[float, str, bytes]] = deque(maxlen=KEPT_DEAD_LETTERS)
        self.dead_count = 0

    async def prepare(self) -> None:
        """Nothing to prepare."""

    async def abandoned(self) -> list[Entry]:
        """Events a cancelled writer had taken."""
        return [Entry(0, str(e.id), e.data) for e in self.queue.pending()]

    async def take(self, count: int, block: float) -> list[Entry]:
        """Up to `count` queued events, waiting up to `block` s for the first."""
        if block > 0:
            await self.queue.wait(block)  # returns at once when something is queued
        return [Entry(0, str(e.id), e.data) for e in self.queue.take(count)]

    async def touch(self, entries: Sequence[Entry]) -> None:
        """Nothing: no other writer reads this queue."""

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Forget written events."""
        self.queue.ack(int(e.id) for e in entries)

    async def dead_letter(self, entry: Entry, why: str) -> None:
        """Count and log the event (never its prompt), keep the newest, forget it."""
        self.dead_count += 1
        self.dead.append((time.time(), why, entry.data))
        logger.error("audit dead letter ({}): {}", why, _summary(entry.data))
        self.queue.ack([int(entry.id)])

    async def status(self) -> QueueStatus:
        """The backlog and the dead letters of this process."""
        return QueueStatus(
            backlog=len(self.queue), bytes=self.queue.size_bytes, dead_letters=self.dead_count
        )
