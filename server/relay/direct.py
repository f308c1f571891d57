"""The relay leg on aiohttp directly: one session per backend and worker, no httpx in between.

httpx's API over aiohttp's transport cost about a fifth of the gateway's CPU per relayed
request (a py-spy profile of the bench: building the request, merging the URL, the cookie jar)
on top of aiohttp's own work. Relayed requests go through this client; the probes and the
model catalog keep httpx, and tests that inject an httpx transport relay through that instead.

Never kept between requests: cookies (a backend's Set-Cookie must not reach another tenant's
request) and the body encoding (bytes pass as they come: the gateway asks for identity).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import aiohttp
from yarl import URL

from config import Backend, Settings

# Connections a worker may hold to one backend at once. Every request in flight holds one for
# its whole answer (minutes for a long generation), so this caps a worker's streams per backend:
# it must be far above what the limits and the backends' max_concurrent let through. aiohttp's
# pool costs nothing for connections it does not open.
POOL_CONNECTIONS = 4096
KEEPALIVE_SECONDS = 5.0  # an idle connection is closed after this (httpx's default)
QUERY_SAFE = "!$&'()*+,/:;=?@[]~%"  # kept as they are: a raw query is already encoded


class DirectAnswer:
    """A backend's answer: status and headers read, the body streamed as it arrives."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (case-insensitive)."""
        return self._response.headers

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self._response.status < 300

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives."""
        async for chunk in self._response.content.iter_any():
            yield chunk

    async def aclose(self) -> None:
        """Give the connection back (closed if the body was not read to its end)."""
        self._response.release()


class DirectClient:
    """Relays requests to one backend over a keep-alive aiohttp session (made on first use)."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.base = backend.url.rstrip("/")
        # connect: waiting for a pooled connection and connecting; sock_read: between two reads.
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.upstream_read_timeout,
            sock_connect=settings.upstream_connect_timeout,
            sock_read=settings.upstream_read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=POOL_CONNECTIONS, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("Content-Type",),
            )
        return self._session

    def url(self, target: str) -> URL:
        """The backend URL of a path (already encoded) and a raw query, made safe to send."""
        path, sep, query = target.partition("?")
        return URL(self.base + path + sep + quote(query, safe=QUERY_SAFE), encoded=True)

    async def send(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> DirectAnswer:
        """Send one request; the answer once its status and headers are read."""
        response = await self._open().request(
            method,
            self.url(target),
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=self.timeout,
        )
        return DirectAnswer(response)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
