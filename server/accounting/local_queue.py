"""The writer's view of an in-process audit queue (limits.EventQueue).

The queue is MemoryLimits' own (no Redis: the embedded default), or a worker's fallback when
Redis could not take an event. Dead letters stay in this process: counted, logged, the newest
kept in memory.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence

from loguru import logger

from limits import EventQueue
from server.accounting.source import Entry, QueueStatus

KEPT_DEAD_LETTERS = 1000


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
