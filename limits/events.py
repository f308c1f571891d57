"""The in-process audit queue of MemoryLimits: append, take a batch, acknowledge; byte-counted."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One event in the queue; ``id`` grows with every append."""

    id: int
    data: bytes


class EventQueue:
    """What the Redis streams are to RedisLimits, for one process.

    settle() and record() append; the writer take()s a batch (the events move to pending),
    writes it and ack()s it. Events taken and not acked stay in ``pending()`` (a writer that
    failed retries them) and in ``size_bytes``, the figure the bound is checked against, like the
    streams' byte counters. ``wait()`` lets the writer sleep until something is queued.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max = max_bytes
        self._queued: deque[QueuedEvent] = deque()
        self._pending: dict[int, QueuedEvent] = {}
        self._next = 1
        self._bytes = 0
        self._signal = asyncio.Event()

    @property
    def size_bytes(self) -> int:
        """Bytes of the events queued or pending (not acked yet)."""
        return self._bytes

    @property
    def over_bound(self) -> bool:
        """Whether the queue holds more bytes than its bound (new requests are refused)."""
        return self._max is not None and self._bytes > self._max

    def __len__(self) -> int:
        return len(self._queued) + len(self._pending)

    def append(self, data: bytes) -> None:
        """Queue one event (the bound is the caller's business: admit and record check it)."""
        self._queued.append(QueuedEvent(self._next, data))
        self._next += 1
        self._bytes += len(data)
        self._signal.set()

    def take(self, limit: int) -> list[QueuedEvent]:
        """Up to ``limit`` of the oldest queued events, now pending until acked."""
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
        """Forget written events; returns how many were pending."""
        done = 0
        for i in ids:
            event = self._pending.pop(i, None)
            if event is not None:
                self._bytes -= len(event.data)
                done += 1
        return done

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a queued event; True if one is there."""
        if not self._queued:
            self._signal.clear()
            try:
                await asyncio.wait_for(self._signal.wait(), timeout)
            except TimeoutError:
                return False
        return True
