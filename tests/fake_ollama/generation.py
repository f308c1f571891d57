"""The generation engine: pacing, fault injection, disconnect tracking, metrics, token records."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sanic import HTTPResponse, Request

from .plan import Piece, Plan
from .records import note
from .schedule import BEFORE_FIRST_MESSAGE, MIDSTREAM_MESSAGE, Tracker, scheduled
from .state import Config, State
from .util import rfc3339_utc
from .web import send_json

NS_PER_MS = 1_000_000
FAST_FLUSH_BYTES = 32 * 1024


@dataclass
class Result:
    """What a generation produced."""

    plan: Plan
    sent: list[Piece]
    load_ns: int
    eval_ns: int
    total_ns: int
    created_ns: int
    extra: dict[str, Any] = field(default_factory=dict)

    def text(self, kind: str = "content") -> str:
        """Concatenated text of the pieces of one kind."""
        return "".join(p.text for p in self.sent if p.kind == kind)

    @property
    def eval_count(self) -> int:
        """Output tokens produced."""
        return sum(p.tokens for p in self.sent)

    def metrics(self) -> dict[str, int]:
        """Native timing/count fields, zero values omitted as Go's omitempty does."""
        prompt_ns = self.plan.prompt_tokens * 1_480_000 + 2_100_000
        eval_ns = max(self.eval_ns, self.eval_count * 16_300_000)
        total = max(self.total_ns, self.load_ns + prompt_ns + eval_ns + 2_500_000)
        values = {
            "total_duration": total,
            "load_duration": self.load_ns,
            "prompt_eval_count": self.plan.prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": self.eval_count,
            "eval_duration": eval_ns if self.eval_count else 0,
        }
        return {k: v for k, v in values.items() if v}


class Formatter(Protocol):
    """Turns pieces into wire events for one API flavour."""

    stream_content_type: str
    aggregate_content_type: str
    aggregate_newline: bool
    stream_headers: tuple[tuple[str, str], ...]

    def piece(self, piece: Piece, created_ns: int) -> list[bytes]:
        """Events for one piece."""

    def done(self, result: Result) -> list[bytes]:
        """Events closing a successful stream."""

    def midstream_error(self) -> list[bytes]:
        """Events emitted when generation fails after the stream began."""

    def aggregate(self, result: Result) -> Any:
        """The single object returned for stream=false."""

    def error(self, status: int, message: str, streaming: bool) -> HTTPResponse:
        """Response for an error before anything was written."""


class Clock:
    """Strictly increasing wall-clock nanoseconds for created_at values."""

    def __init__(self) -> None:
        self.last = 0

    def now(self) -> int:
        """Current time, never equal to a previous reading."""
        self.last = max(time.time_ns(), self.last + 1000)
        return self.last


async def run_generation(
    request: Request, state: State, model: str, plan: Plan, fmt: Formatter, stream: bool
) -> HTTPResponse | None:
    """Produce a generation with pacing and faults; record tokens and client disconnects."""
    cfg = state.config
    tracker = Tracker(request, state, model, stream)
    note(request, model=model, stream=stream, generated=0, outcome="running")
    started = time.monotonic_ns()
    try:
        async with scheduled(request, state) as fault:
            if fault is not None:
                return fmt.error(fault[0], fault[1], False)
            if cfg.fault == "error_before_first":
                note(request, outcome="error", status=500)
                return fmt.error(500, BEFORE_FIRST_MESSAGE, stream)
            load_ns = time.monotonic_ns() - started + 1_200_000
            return await _emit(request, cfg, plan, fmt, stream, tracker, started, load_ns)
    except asyncio.CancelledError:
        tracker.record()
        raise


class _Writer:
    """Sends events one per write, or coalesced in fast mode."""

    def __init__(self, response: Any, fast: bool) -> None:
        self.response = response
        self.fast = fast
        self.buffer: list[bytes] = []
        self.size = 0

    async def send(self, events: list[bytes]) -> None:
        if not self.fast:
            for event in events:
                await self.response.send(event)
            return
        self.buffer += events
        self.size += sum(len(e) for e in events)
        if self.size >= FAST_FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self.buffer:
            data, self.buffer, self.size = b"".join(self.buffer), [], 0
            await self.response.send(data)


async def _emit(
    request: Request,
    cfg: Config,
    plan: Plan,
    fmt: Formatter,
    stream: bool,
    tracker: Tracker,
    started: int,
    load_ns: int,
) -> HTTPResponse | None:
    midstream = cfg.fault in ("midstream_error", "abrupt_close")
    trigger = min(cfg.fault_after, len(plan.pieces)) if midstream else -1
    clock = Clock()
    writer: _Writer | None = None
    if stream:
        response = await request.respond(
            content_type=fmt.stream_content_type, headers=dict(fmt.stream_headers)
        )
        writer = _Writer(response, cfg.fast)
    view = note(request, prompt_eval_count=plan.prompt_tokens)
    eval_started = time.monotonic_ns()
    sent: list[Piece] = []
    for index in range(len(plan.pieces) + 1):
        if index > 0 and cfg.pace_ms:
            if writer is not None:
                await writer.flush()
            await asyncio.sleep(cfg.pace_ms / 1000)
        if index == trigger and cfg.fault == "abrupt_close":
            if writer is not None:
                await writer.flush()
            await tracker.abort()
        if index == trigger:
            note(request, outcome="error")
            if writer is None:
                return fmt.error(500, MIDSTREAM_MESSAGE, False)
            await writer.send(fmt.midstream_error())
            await writer.flush()
            await writer.response.eof()
            return None
        if index == len(plan.pieces):
            break
        piece = plan.pieces[index]
        if writer is not None:
            await writer.send(fmt.piece(piece, clock.now()))
        sent.append(piece)
        tracker.tokens_sent = len(sent)
        view["generated"] = view.get("generated", 0) + piece.tokens
    now = time.monotonic_ns()
    result = Result(plan, sent, load_ns, now - eval_started, now - started, clock.now())
    view.update(eval_count=result.eval_count, done_reason=plan.done_reason, outcome="done")
    if writer is None:
        return await send_json(
            request, fmt.aggregate(result), 200, fmt.aggregate_content_type, fmt.aggregate_newline
        )
    await writer.send(fmt.done(result))
    await writer.flush()
    await writer.response.eof()
    return None


def created_at(ns: int) -> str:
    """created_at string for a chunk."""
    return rfc3339_utc(ns)
