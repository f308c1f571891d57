"""Streams whose output is reserved step by step: extend as tokens pass, stop at the budget.

An uncapped stream under a budget or tpm limit is admitted with its prompt and one step of
output. As its tokens near the reservation, the next step is asked for ahead of time (one
script call, both scopes, every counter); a record that would pass the reservation waits for
it. When nothing is left, the upstream request is closed and the client's stream ends with the
surface's length-limited ending; what was sent is what is charged.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from loguru import logger

from limits import LimitsBackend, LimitsUnavailable
from server.context import RequestContext
from server.relay import endings
from server.relay.body import Kind
from server.relay.framing import Records

PREFETCH_FRACTION = 2  # ask for the next step when half of this one is left


class Sink(Protocol):
    """Where records go (Sanic's streaming response)."""

    async def send(self, data: bytes) -> None:
        """Send bytes to the client."""


class Steps:
    """The extensions of one request's reservation, asked for ahead of need."""

    def __init__(self, limits: LimitsBackend, ctx: RequestContext, step: int) -> None:
        self.limits = limits
        self.ctx = ctx
        self.margin = max(1, step // PREFETCH_FRACTION)
        self.pending: asyncio.Task[bool] | None = None
        self.refused = False

    @property
    def allowed(self) -> int:
        """Output tokens the stream may pass now."""
        ticket = self.ctx.ticket
        return ticket.output_reserved if ticket is not None else 0

    def prefetch(self, sent: int) -> None:
        """Start the next extension once the stream is near its reservation."""
        if self.pending is None and not self.refused and sent >= self.allowed - self.margin:
            self.pending = asyncio.create_task(self._extend())

    async def _extend(self) -> bool:
        ticket = self.ctx.ticket
        if ticket is None:
            return False
        try:
            extension = await self.limits.extend(ticket)
        except LimitsUnavailable as exc:  # fail closed: stop at what is reserved
            logger.warning("extension failed ({}); the stream stops here", type(exc).__name__)
            return False
        self.ctx.ticket = extension.ticket
        return extension.granted > 0

    async def room_for(self, tokens: int) -> bool:
        """Whether `tokens` output tokens are reserved, extending as needed; False: stop."""
        while tokens > self.allowed:
            if self.refused:
                return False
            task = self.pending or asyncio.create_task(self._extend())
            self.pending = None
            if not await task:
                self.refused = True
                return False
        return True

    def cancel(self) -> None:
        """Drop an extension still in flight (the request is over)."""
        if self.pending is not None:
            self.pending.cancel()


async def send_records(
    raw: list[bytes], records: Records, steps: Steps, response: Sink, ctx: RequestContext
) -> bool:
    """Send whole records while the reservation has room; False once the budget stops it.

    The records of one upstream chunk that fit go out in one write (a stream that fell behind
    arrives in large chunks, and a write per record would keep it behind while the backend
    runs ahead); what is ready is flushed before waiting for an extension.
    """
    meter = records.meter
    ready: list[bytes] = []
    room = True
    for record in raw:
        before = meter.passed
        out = records.take(record)
        if meter.passed > before and meter.passed > steps.allowed:
            await _flush(ready, response, ctx)
            if not await steps.room_for(meter.passed):
                meter.passed = before  # this record is not sent, so it is not charged
                room = False
                break
        if out:
            ready.append(out)
            records.sent(out)
        steps.prefetch(meter.passed)
    await _flush(ready, response, ctx)
    return room


async def _flush(ready: list[bytes], response: Sink, ctx: RequestContext) -> None:
    """Send the records collected so far in one write."""
    if ready:
        ctx.sent_first_byte()
        data = ready[0] if len(ready) == 1 else b"".join(ready)
        ready.clear()
        await response.send(data)


def ending(
    kind: Kind,
    path: str,
    ctx: RequestContext,
    sent: int,
    include_usage: bool,
    open_block: int | None = None,
) -> bytes:
    """The length-limited ending of the surface of `kind` (`open_block`: see Records)."""
    model = ctx.model or ""
    prompt = ctx.reading.prompt_tokens if ctx.reading is not None else 0
    if kind is Kind.NATIVE_GENERATE:
        return endings.native(path, model, prompt, sent)
    if kind is Kind.ANTHROPIC_MESSAGES:
        return endings.anthropic(model, prompt, sent, open_block)
    if kind is Kind.OPENAI_RESPONSES:
        return endings.responses(model, prompt, sent)
    return endings.openai(path, model, prompt, sent, include_usage)
