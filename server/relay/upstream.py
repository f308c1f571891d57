"""Upstream HTTP: one httpx client per backend, header filtering, httpx errors translated.

Relayed requests go through `DirectClient` (aiohttp) unless a test injected an httpx transport;
both answers read alike (`Answer`). httpx and aiohttp errors never travel past this module; `upstream_errors()` turns them into
    BackendDown (BadGateway, 502)   connection refused / connect timeout: fail over is safe
    BackendBusy (Unavailable, 503)  Ollama's own "server busy" answer (its queue is full), read
                                    by `send()` before any byte went out: fail over is safe
    GatewayTimeout (504)            the backend accepted the request but did not answer in time
    Unavailable (503)               every pooled connection to the backend stayed busy
    BadGateway (502)                the backend broke the connection or spoke garbage
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from config import Backend, Settings
from server.errors import BadGateway, BadRequest, GatewayTimeout, Unavailable
from server.relay.direct import POOL_CONNECTIONS, DirectClient

POOL_KEEPALIVE = 64  # idle ones kept for reuse
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what an HTTP field value may not hold
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Never sent upstream: the gateway's own credentials, and what httpx or the gateway sets itself.
REQUEST_DROP = HOP_BY_HOP | {
    "authorization",
    "x-api-key",
    "cookie",
    "host",
    "content-length",
    "accept-encoding",
    "origin",
    "expect",
}
# Never passed back: framing is the gateway's own, and so are the server and date headers.
RESPONSE_DROP = HOP_BY_HOP | {"content-length", "content-encoding", "server", "date"}


BUSY_ANSWER = b"server busy, please try again"  # Ollama's 503 when OLLAMA_MAX_QUEUE is full
SNIFF_BYTES = 4096  # how much of a 503 body is read to tell a busy answer


class Answer(Protocol):
    """A backend's answer whose body is still to be read (httpx's Response reads alike)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""

    @property
    def is_success(self) -> bool:
        """A 2xx status."""

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""

    async def aclose(self) -> None:
        """Release the connection."""


class BackendDown(BadGateway):
    """The backend could not be reached before anything was sent: another may be tried."""


class BackendBusy(Unavailable):
    """The backend is healthy but full (Ollama's 503 "server busy"): another may be tried."""

    code = "backend_busy"


def make_client(
    backend: Backend, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A keep-alive client for one backend with a small pool (one per worker).

    `transport` replaces the network (tests pass `httpx.MockTransport` or an ASGI app).
    """
    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout,
        read=settings.upstream_read_timeout,
        write=settings.upstream_read_timeout,
        pool=settings.upstream_read_timeout,
    )
    limits = httpx.Limits(
        max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_KEEPALIVE
    )
    # httpx's API over aiohttp's transport: about 0.6 ms less per relayed request than
    # httpcore here (bench/bench_relay.py), with the same exceptions (mapped to httpx's).
    return httpx.AsyncClient(
        base_url=backend.url,
        timeout=timeout,
        follow_redirects=False,
        transport=transport or AiohttpTransport(limits=limits),
    )


def host_of(url: str) -> str:
    """The Host header value for a backend URL."""
    return urlsplit(url).netloc


def _connection_named(headers: Mapping[str, str]) -> set[str]:
    value = headers.get("connection", "")
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def client_headers(incoming: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that go upstream: credentials and hop-by-hop ones dropped.

    A value with a control character (NUL, or any but a tab) is a 400 naming the header, as
    Ollama's own HTTP server answers it; the relay checks this before admission.
    """
    lowered = {k.lower(): v for k, v in incoming.items()}
    drop = REQUEST_DROP | _connection_named(lowered)
    out = {k: v for k, v in lowered.items() if k not in drop}
    for name, value in out.items():
        if _CONTROL.search(value):
            raise BadRequest(f"header '{name}' has a control character in its value")
    return out


def request_headers(incoming: Mapping[str, str], backend: Backend) -> dict[str, str]:
    """The client's headers minus credentials and hop-by-hop ones, plus the backend's own."""
    out = client_headers(incoming)
    out["host"] = host_of(backend.url)
    out["accept-encoding"] = "identity"
    if backend.token:
        out["authorization"] = f"Bearer {backend.token}"
    return out


# The gateway's own answer headers: a backend's (another gateway's, a proxy's) never pass, so
# a 429 carrying them is always this gateway's, and the rate-limit figures are always ours.
GATEWAY_HEADER_PREFIXES = ("x-gateway-", "x-ratelimit-", "x-should-retry", "x-request-id")


def response_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """Upstream response headers that may be passed to the client (content type included)."""
    drop = RESPONSE_DROP | _connection_named(upstream)
    return {
        k: v
        for k, v in upstream.items()
        if (name := k.lower()) not in drop and not name.startswith(GATEWAY_HEADER_PREFIXES)
    }


# Nothing reached the backend: another may be tried. (aiohttp's connection timeout is also one
# of its ServerTimeoutErrors, so this is checked first.)
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
_TIMEOUT = (httpx.TimeoutException, aiohttp.ServerTimeoutError)


@contextmanager
def upstream_errors(backend: Backend) -> Iterator[None]:
    """Translate httpx and aiohttp exceptions into gateway errors naming the backend."""
    try:
        yield
    except _UNREACHABLE as exc:
        raise BackendDown(f"backend {backend.name} is unreachable") from exc
    except httpx.PoolTimeout as exc:
        raise Unavailable(f"backend {backend.name} has no free connection") from exc
    except _TIMEOUT as exc:
        raise GatewayTimeout(f"backend {backend.name} did not answer in time") from exc
    except (httpx.HTTPError, aiohttp.ClientError) as exc:
        raise BadGateway(f"backend {backend.name} failed: {type(exc).__name__}") from exc


class _Replay:
    """An answer whose first bytes were already read: those, then the rest."""

    def __init__(self, source: Answer, head: bytes, rest: AsyncIterator[bytes]) -> None:
        self._source, self._head, self._rest = source, head, rest
        self.status_code = source.status_code
        self.headers = source.headers
        self.is_success = source.is_success

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        await self._source.aclose()


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an empty async generator


async def _unless_busy(response: Answer, backend: Backend) -> Answer:
    """Raise BackendBusy for Ollama's busy answer; any other 503 is passed on unchanged."""
    if isinstance(response, httpx.Response) and response.is_stream_consumed:
        head, rest = response.content, _nothing()  # a body read already (a test transport's)
    else:
        head, rest = b"", response.aiter_raw()
        async for chunk in rest:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
    if BUSY_ANSWER in head:
        await response.aclose()
        raise BackendBusy(  # Ollama's words first: clients that look for them still see them
            f"server busy, please try again: backend {backend.name} is full",
            headers={"Retry-After": "1"},
        )
    return _Replay(response, head, rest)


async def send(
    client: httpx.AsyncClient | DirectClient,
    backend: Backend,
    method: str,
    url: str,
    incoming: Mapping[str, str],
    body: bytes | None,
) -> Answer:
    """Send one request upstream and return its streamed answer (status and headers read).

    Raises BackendDown when the backend cannot be reached and BackendBusy when it answered
    Ollama's 503 "server busy"; nothing has reached the client then, so another may be tried.
    """
    with upstream_errors(backend):
        headers = request_headers(incoming, backend)
        response: Answer
        if isinstance(client, DirectClient):
            response = await client.send(method, url, headers, body)
        else:
            request = client.build_request(method, url, headers=headers, content=body)
            response = await client.send(request, stream=True)
        if response.status_code != 503:
            return response
        try:
            return await _unless_busy(response, backend)
        except BaseException:
            await response.aclose()
            raise
