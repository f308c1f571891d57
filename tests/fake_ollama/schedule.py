"""Admission before the first byte: busy and load faults, the queue, the simulated model load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sanic import Request

from .load import QueueFull
from .records import note
from .state import State

MIDSTREAM_MESSAGE = "an error was encountered while running the model"
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
LOAD_TIMEOUT_MESSAGE = "timed out waiting for llama runner to start - progress 0.00 - "
BEFORE_FIRST_MESSAGE = "llama runner process has terminated: exit status 2"

Fault = tuple[int, str]


class Tracker:
    """Records a cancellation when the client goes away before the handler finishes."""

    def __init__(self, request: Request, state: State, model: str, stream: bool) -> None:
        self.request = request
        self.state = state
        self.model = model
        self.stream = stream
        self.tokens_sent = 0
        self.aborted = False

    def record(self) -> None:
        """Store a cancellation entry (unless the fake itself closed the connection)."""
        if self.aborted:
            return
        note(self.request, outcome="cancelled")
        entry: dict[str, Any] = {
            "path": self.request.path,
            "time": time.time(),
            "tokens_sent": self.tokens_sent,
            "model": self.model,
            "stream": self.stream,
        }
        request_id = self.request.headers.get("x-request-id")
        if request_id:
            entry["request_id"] = request_id
        self.state.cancellations.append(entry)

    async def abort(self) -> None:
        """Drop the TCP connection mid-response, then wait to be cancelled."""
        self.aborted = True
        note(self.request, outcome="error")
        abort = getattr(self.request.transport, "abort", None)
        if callable(abort):
            abort()
        await asyncio.sleep(5)
        raise asyncio.CancelledError


def _take_busy(state: State) -> bool:
    cfg = state.config
    if cfg.fault == "busy":
        return True
    if cfg.busy_next > 0:
        cfg.busy_next -= 1
        return True
    return False


@asynccontextmanager
async def scheduled(request: Request, state: State) -> AsyncIterator[Fault | None]:
    """Admit a request to a model slot: yields None, or the error Ollama answers instead.

    Busy (fault, busy_next, full queue) answers 503 at once; otherwise the request waits for a
    slot, then `first_byte_ms` (the load), then the load_timeout fault may strike. The slot is
    held until the body of the `async with` ends.
    """
    cfg = state.config
    if _take_busy(state):
        state.load.rejected += 1
        note(request, outcome="busy", status=503)
        yield 503, BUSY_MESSAGE
        return
    try:
        async with state.load.slot(cfg.parallel, cfg.max_queue):
            await asyncio.sleep(cfg.first_byte_ms / 1000)
            if cfg.fault == "load_timeout":
                note(request, outcome="error", status=500)
                yield 500, LOAD_TIMEOUT_MESSAGE
                return
            yield None
    except QueueFull:
        note(request, outcome="busy", status=503)
        yield 503, BUSY_MESSAGE
