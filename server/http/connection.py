"""The HTTP connection protocol: bytes that cannot be HTTP are refused at once, slow senders cut.

Sanic waits for a complete header before it looks at a request, so a TLS handshake or a run of
NUL bytes sent to the plain port would sit until the keep-alive timeout; and every byte resets
its request timer, so a client dripping its header or body is never cut off. This protocol
refuses a request line that does not start with an HTTP method token (400, connection closed)
and gives each request REQUEST_TIMEOUT seconds in total to send its header and body. Each such
refusal leaves its audit event like any request (what the first line seems to hold, the status,
the client's address).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sanic.exceptions import RequestTimeout
from sanic.http.constants import Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from server.accounting.closing import record_refusal, refusal_record

# RFC 9110 token characters, then the space that ends the method.
_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}( |$)")
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nbad request: this is not HTTP/1.1 \r\n"
)
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 37\r\nconnection: close\r\n\r\nthe request took too long to arrive\r\n"
)


_REFUSALS: set[asyncio.Task[None]] = set()  # their audit events on the way (kept referenced)


class GatewayProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with an early request-line check and a whole-request deadline."""

    __slots__ = ("_checking", "_deadline")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._checking = False  # a request line has begun, its method not complete yet

    def data_received(self, data: bytes) -> None:
        """Check the start of each request line before Sanic buffers it."""
        http = getattr(self, "_http", None)  # None until the connection task starts
        idle = http is None or http.stage is Stage.IDLE
        starting = idle and not self.recv_buffer
        if starting:
            self._arm_deadline()
            self._checking = True
        if self._checking:
            head = bytes(self.recv_buffer) + data
            if _METHOD.match(head[:33]) is None:
                self._refuse(_BAD_REQUEST, head[:1024], 400, "not_http")
                return
            self._checking = b" " not in head[:33]
        super().data_received(data)

    def _arm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        timeout = float(self.app.config.REQUEST_TIMEOUT)
        self._deadline = self.loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        """The request's time is up: cut it if its header or body is still arriving."""
        self._deadline = None
        current = getattr(self, "_http", None)
        if current is None or self.transport is None:
            return
        if current.stage is Stage.REQUEST or (
            current.stage is Stage.HANDLER and current.request_body
        ):
            if current.stage is Stage.REQUEST or self._task is None:
                self._refuse(_TIMEOUT, bytes(self.recv_buffer[:1024]), 408, "request_timeout")
                return
            current.exception = RequestTimeout("the request took too long to arrive")
            self._task.cancel()

    def _refuse(self, answer: bytes, head: bytes, status: int, error: str) -> None:
        transport = self.transport
        if transport is None:
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else None
        transport.write(answer)
        transport.close()
        worker = self.app.ctx.worker_
        if worker is not None:
            record = refusal_record(head, status, error, client)
            task = self.loop.create_task(record_refusal(worker, record))
            _REFUSALS.add(task)
            task.add_done_callback(_REFUSALS.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)  # type: ignore[no-untyped-call]
