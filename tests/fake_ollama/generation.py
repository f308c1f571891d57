"""The generation engine: pacing, fault injection, disconnect tracking, metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sanic import HTTPResponse, Request

from .plan import Piece, Plan
from .state import Config, State
from .util import rfc3339_utc
from .web import send_json

MIDSTREAM_MESSAGE = "an error was encountered while running the model"
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
LOAD_TIMEOUT_MESSAGE = "timed out waiting for llama runner to start - progress 0.00 - "
BEFORE_FIRST_MESSAGE = "llama runner process has terminated: exit status 2"
NS_PER_MS = 1_000_000


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
        abort = getattr(self.request.transport, "abort", None)
        if callable(abort):
            abort()
        await asyncio.sleep(5)
        raise asyncio.CancelledError


async def schedule(state: State, cfg: Config) -> tuple[int, str] | None:
    """Simulate scheduling/loading: busy and load_timeout faults, first-byte delay."""
    if cfg.fault == "busy":
        return 503, BUSY_MESSAGE
    await asyncio.sleep(cfg.first_byte_ms / 1000)
    if cfg.fault == "load_timeout":
        return 500, LOAD_TIMEOUT_MESSAGE
    return None


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
    """Produce a generation with pacing and faults; record client disconnects."""
    cfg = state.config
    tracker = Tracker(request, state, model, stream)
    started = time.monotonic_ns()
    try:
        fault = await schedule(state, cfg)
        if fault is not None:
            return fmt.error(fault[0], fault[1], False)
        if cfg.fault == "error_before_first":
            return fmt.error(500, BEFORE_FIRST_MESSAGE, stream)
        load_ns = time.monotonic_ns() - started + 1_200_000
        return await _emit(request, cfg, plan, fmt, stream, tracker, started, load_ns)
    except asyncio.CancelledError:
        tracker.record()
        raise


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
    response = await request.respond(content_type=fmt.stream_content_type) if stream else None
    eval_started = time.monotonic_ns()
    sent: list[Piece] = []
    for index in range(len(plan.pieces) + 1):
        if index > 0 and cfg.pace_ms:
            await asyncio.sleep(cfg.pace_ms / 1000)
        if index == trigger and cfg.fault == "abrupt_close":
            await tracker.abort()
        if index == trigger:
            if response is None:
                return fmt.error(500, MIDSTREAM_MESSAGE, False)
            for event in fmt.midstream_error():
                await response.send(event)
            await response.eof()
            return None
        if index == len(plan.pieces):
            break
        piece = plan.pieces[index]
        if response is not None:
            for event in fmt.piece(piece, clock.now()):
                await response.send(event)
        sent.append(piece)
        tracker.tokens_sent = len(sent)
    now = time.monotonic_ns()
    result = Result(plan, sent, load_ns, now - eval_started, now - started, clock.now())
    if response is None:
        return await send_json(
            request, fmt.aggregate(result), 200, fmt.aggregate_content_type, fmt.aggregate_newline
        )
    for event in fmt.done(result):
        await response.send(event)
    await response.eof()
    return None


def created_at(ns: int) -> str:
    """created_at string for a chunk."""
    return rfc3339_utc(ns)
