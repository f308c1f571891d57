"""Typed contexts: the app's (settings, injected parts), the worker's services, one request's."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TypeAlias

import httpx
from sanic import Request, Sanic
from sanic.config import Config

from config import Settings
from limits import Admission, AnyRedis, LimitsBackend, Ticket
from server.accounting.meter import Counted, Meter
from server.accounting.recorder import Recorder
from server.accounting.writer import Writer
from server.auth.authenticator import Authenticator
from server.auth.keycache import KeyCache
from server.auth.principal import Principal
from server.errors import LIMIT_HEADER, GatewayError
from server.observe.logs import AccessLog
from server.observe.metrics import Metrics
from server.relay.backends import BackendRegistry
from server.relay.body import Reading, Rules

CLIENT_GONE = "client_disconnected"
# Ways an answer ends early after the backend received the request: charged, not free.
CUT_SHORT = frozenset({CLIENT_GONE, "upstream_timeout", "BadGateway", "BackendDown"})
NO_TOKENS = Counted(0, 0, False)


@dataclass
class Worker:
    """Everything one worker holds open; built in before_server_start, closed in reverse."""

    settings: Settings
    redis: AnyRedis | None
    limits: LimitsBackend
    owns_limits: bool  # False when the limits backend was injected (tests close their own)
    cache: KeyCache
    auth: Authenticator
    recorder: Recorder
    backends: BackendRegistry
    rules: Rules  # what a tenant may ask of a shared model
    metrics: Metrics
    access: AccessLog
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # loops, cancelled at shutdown
    live: dict[str, RequestContext] = field(default_factory=dict)  # admitted, still running
    stream_writer: Writer | None = None  # the audit streams' writer, when it runs in here
    stream_task: asyncio.Task[None] | None = None

    async def flush_audit(self) -> None:
        """Write every audit event queued so far (shutdown, and tests reading the log)."""
        await self.recorder.flush()
        if self.stream_writer is not None:
            await self.stream_writer.flush()


@dataclass
class AppContext:
    """`app.ctx`: the settings, what a caller injected, and (once started) the worker."""

    settings: Settings
    limits: LimitsBackend | None = None  # injected limits backend (tests), else built per worker
    transport: httpx.AsyncBaseTransport | None = None  # injected upstream transport (tests)
    worker_: Worker | None = None

    @property
    def worker(self) -> Worker:
        """The worker's services (set by the start-up listener)."""
        if self.worker_ is None:  # pragma: no cover - requests arrive only after start-up
            raise RuntimeError("worker services requested before start-up")
        return self.worker_


def new_request_id() -> str:
    """A server-generated request id: what limits, leases and settle use, never a client's."""
    return uuid.uuid4().hex


@dataclass(eq=False)
class RequestContext(SimpleNamespace):
    """Everything the gateway learns about one request, from the first middleware to its record."""

    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    client_request_id: str | None = None  # the client's X-Request-Id, a correlation id only
    principal: Principal | None = None
    reading: Reading | None = None  # what the gateway read from the body
    model: str | None = None
    admission: Admission | None = None
    ticket: Ticket | None = None  # the admission's, renewed by each extension
    upstream_sent: bool = False  # a backend received the request (it may have generated)
    backend: str | None = None
    meter: Meter | None = None
    status: int = 0
    error: str | None = None  # the error code the request ended with, if any
    limit: str | None = None  # the scope:limit of a gateway 429
    first_byte: float | None = None
    closed: bool = False  # its record is written (once)

    def failed(self, exc: GatewayError) -> None:
        """A gateway error ends the request (the status is the error's, unless bytes went out)."""
        if self.first_byte is None:
            self.status = exc.status_code
        self.error = exc.code or type(exc).__name__
        self.limit = exc.headers.get(LIMIT_HEADER, self.limit)

    def sent_first_byte(self) -> None:
        """Mark the time the first byte went to the client."""
        if self.first_byte is None:
            self.first_byte = time.perf_counter()

    def counted(self) -> Counted:
        """Tokens to charge: what was generated, never less.

        The backend's own counts when it reported them; else the prompt estimate plus the
        tokens counted in what passed through, and for a non-streamed answer that was cut
        (client gone, timeout, broken connection) the output reserved for it, since the
        backend may have generated it. Nothing when no backend received the request, or
        when one answered with an error.
        """
        if self.meter is None or self.reading is None or not self.upstream_sent:
            return NO_TOKENS
        cut = self.error in CUT_SHORT
        if not (cut or 200 <= self.status < 300):
            return NO_TOKENS
        counted = self.meter.counted(self.reading.prompt_tokens, generates=self.generates)
        if cut and self.generates and not self.reading.stream and self.meter.completion is None:
            reserved = self.ticket.output_reserved if self.ticket is not None else 0
            counted = Counted(counted.prompt, max(counted.completion, reserved), True)
        return counted

    @property
    def generates(self) -> bool:
        """Whether the request's endpoint produces completion tokens."""
        return self.reading is not None and self.reading.kind.generates

    @property
    def caller(self) -> Principal:
        """The authenticated caller; only valid behind the key guard."""
        if self.principal is None:  # pragma: no cover - routes are only reachable after auth
            raise RuntimeError("principal requested before authentication")
        return self.principal


App: TypeAlias = Sanic[Config, AppContext]


class GatewayRequest(Request[App, RequestContext]):
    """A request whose `ctx` is a RequestContext and whose `app.ctx` is an AppContext."""

    @staticmethod
    def make_context() -> RequestContext:
        """A fresh context, with its server-side id and start time."""
        return RequestContext()
