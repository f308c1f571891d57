"""Load accounting and Ollama-like scheduling: requests in flight, parallel slots, a bounded queue.

Ollama runs OLLAMA_NUM_PARALLEL requests per model at once and queues up to OLLAMA_MAX_QUEUE
more; past that it answers 503 "server busy …" before writing anything. The fake does the same
when `parallel` > 0 (0 runs everything at once), and counts every request it handles so tests
can see how load was spread and whether a backend ever exceeded its limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

INFERENCE_PATHS = frozenset(
    {
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/messages",
    }
)


class QueueFull(Exception):
    """The scheduler's queue is full (Ollama's ErrMaxQueue)."""


@dataclass
class Load:
    """Counters of one fake server; `peak_*` never go down until reset."""

    in_flight: int = 0  # every API request being handled (not /_fake/)
    peak: int = 0
    total: int = 0
    inference_in_flight: int = 0  # generation and embedding requests
    inference_peak: int = 0
    inference_total: int = 0
    running: int = 0  # requests holding a model slot (generating)
    peak_running: int = 0
    queued: int = 0  # requests waiting for a slot
    peak_queued: int = 0
    rejected: int = 0  # 503 "server busy" answers
    _changed: asyncio.Condition | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The counters as a JSON object."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def reset(self) -> None:
        """Zero the totals and peaks (requests still in flight stay counted)."""
        self.peak, self.inference_peak = self.in_flight, self.inference_in_flight
        self.peak_running, self.peak_queued = self.running, self.queued
        self.total = self.inference_total = self.rejected = 0

    def enter(self, path: str) -> None:
        """A request arrived."""
        self.in_flight += 1
        self.total += 1
        self.peak = max(self.peak, self.in_flight)
        if path in INFERENCE_PATHS:
            self.inference_in_flight += 1
            self.inference_total += 1
            self.inference_peak = max(self.inference_peak, self.inference_in_flight)

    def leave(self, path: str) -> None:
        """A request finished (answered, failed or cancelled)."""
        self.in_flight -= 1
        if path in INFERENCE_PATHS:
            self.inference_in_flight -= 1

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    @asynccontextmanager
    async def slot(self, parallel: int, max_queue: int) -> AsyncIterator[None]:
        """Hold a model slot while generating; waits in the queue, or raises QueueFull."""
        changed = self._condition()
        if parallel > 0 and self.running >= parallel:
            if self.queued >= max_queue:
                self.rejected += 1
                raise QueueFull
            self.queued += 1
            self.peak_queued = max(self.peak_queued, self.queued)
            try:
                async with changed:
                    await changed.wait_for(lambda: self.running < parallel)
            finally:
                self.queued -= 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            yield
        finally:
            self.running -= 1
            async with changed:
                changed.notify_all()
