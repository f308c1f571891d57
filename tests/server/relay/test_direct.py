"""The relay leg on aiohttp: what reaches the backend, what comes back, how failures read."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config import Backend, Settings
from server.errors import BadGateway, GatewayTimeout
from server.relay.direct import DirectClient
from server.relay.upstream import BackendBusy, BackendDown, send, upstream_errors

Seen = list[dict[str, Any]]


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, Seen]]:
    """A small HTTP server on a real socket that notes each request it gets."""
    seen: Seen = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append({"path": request.raw_path, "headers": dict(request.headers), "body": body})
        if request.path == "/cookie":
            response = web.json_response({"ok": True})
            response.set_cookie("session", "tenant-a-secret")
            return response
        if request.path == "/busy":
            return web.json_response({"error": "server busy, please try again"}, status=503)
        if request.path == "/slow":
            stream = web.StreamResponse()
            await stream.prepare(request)
            await stream.write(b'{"a":1}\n')
            await asyncio.sleep(5)
            return stream
        if request.path == "/broken":
            stream = web.StreamResponse(headers={"content-length": "1000"})
            await stream.prepare(request)
            await stream.write(b'{"a":1}\n')
            assert request.transport is not None
            request.transport.close()
            return stream
        return web.Response(body=b'{"done":true}\n', content_type="application/x-ndjson")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", seen
    finally:
        await server.close()


def _client(url: str, **settings: Any) -> tuple[DirectClient, Backend]:
    backend = Backend("b", url, token="backend-token")
    return DirectClient(backend, Settings().with_(**settings)), backend


async def _body(answer: Any) -> bytes:
    return b"".join([chunk async for chunk in answer.aiter_raw()])


async def test_the_request_reaches_the_backend_as_the_gateway_wrote_it(
    upstream: tuple[str, Seen],
) -> None:
    url, seen = upstream
    client, backend = _client(url)
    incoming = {"Authorization": "Bearer nz_secret", "X-Api-Key": "nz_secret", "X-Trace": "t1"}
    answer = await send(client, backend, "POST", "/api/chat?a=b c&d=%zz", incoming, b'{"m":1}')
    assert answer.status_code == 200 and answer.is_success
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert await _body(answer) == b'{"done":true}\n'
    await answer.aclose()
    got = seen[0]
    assert got["path"] == "/api/chat?a=b%20c&d=%zz" and got["body"] == b'{"m":1}'
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert headers["authorization"] == "Bearer backend-token" and "x-api-key" not in headers
    assert headers["x-trace"] == "t1" and headers["accept-encoding"] == "identity"
    assert "content-type" not in headers  # none sent, none made up
    await client.aclose()


async def test_a_cookie_one_answer_sets_is_never_sent_with_the_next(
    upstream: tuple[str, Seen],
) -> None:
    url, seen = upstream
    client, backend = _client(url)
    for path in ("/cookie", "/api/tags"):
        answer = await send(client, backend, "GET", path, {}, None)
        await _body(answer)
        await answer.aclose()
    assert "Cookie" not in seen[1]["headers"] and "cookie" not in seen[1]["headers"]
    await client.aclose()


async def test_failures_read_as_the_gateway_errors(upstream: tuple[str, Seen]) -> None:
    url, _ = upstream
    client, backend = _client(url, upstream_read_timeout=0.5)
    with pytest.raises(BackendBusy):
        await send(client, backend, "POST", "/busy", {}, b"{}")
    slow = await send(client, backend, "POST", "/slow", {}, b"{}")
    with pytest.raises(GatewayTimeout), upstream_errors(backend):  # as the relay reads it
        await _body(slow)
    await slow.aclose()
    broken = await send(client, backend, "POST", "/broken", {}, b"{}")
    with pytest.raises(BadGateway), upstream_errors(backend):
        await _body(broken)
    await broken.aclose()
    await client.aclose()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    down, backend = _client(closed)
    with pytest.raises(BackendDown):
        await send(down, backend, "POST", "/api/chat", {}, b"{}")
    await down.aclose()
