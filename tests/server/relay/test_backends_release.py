"""Slots through the in-process gateway: freed on every way out; busy answers fail over.

The backend metrics follow: nothing stays counted in flight, and each fail-over is counted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from config import Backend, Settings
from server.app import create_app
from server.context import App
from server.relay.backends import BackendRegistry
from server.relay.shared import leases_key
from server.relay.upstream import BackendBusy, send
from tests.conftest import REDIS_URL
from tests.fake_ollama.app import create_app as create_fake
from tests.fake_ollama.models import DEFAULT_MODELS
from tests.fake_ollama.state import Config
from tests.inprocess import serving
from tests.server.relay.test_pipeline import _key

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


@dataclass
class Gateway:
    """An in-process gateway in front of in-process fakes (by backend name)."""

    url: str
    app: App
    fakes: dict[str, Any]
    auth: dict[str, str]
    namespace: str

    @property
    def registry(self) -> BackendRegistry:
        return self.app.ctx.worker.backends

    def configure(self, name: str, **patch: Any) -> None:
        state = self.fakes[name].ctx.state
        state.config = state.config.merged(patch)

    def sample(self, name: str, **labels: str) -> float:
        """One of this worker's metric samples (0 when the series does not exist)."""
        value = self.app.ctx.worker.metrics.registry.get_sample_value(name, labels)
        return value or 0.0

    def gauges(self) -> list[float]:
        """nzgw_backend_in_flight of each backend."""
        name = "nzgw_backend_in_flight"
        return [self.sample(name, backend=s.name) for s in self.registry.states]

    async def settled(self) -> list[int]:
        """Wait (up to 3 s) until no slot is held, and return the counts (the gauges agree)."""
        for _ in range(60):
            counts = [s.in_flight for s in self.registry.states]
            if not any(counts) and not any(self.gauges()):
                break
            await asyncio.sleep(0.05)
        assert self.gauges() == counts, "nzgw_backend_in_flight does not follow the slots"
        return counts

    async def leases(self, name: str) -> int:
        redis = Redis.from_url(REDIS_URL)
        try:
            await asyncio.sleep(0.05)  # leases are given back in the background
            return int(await redis.zcard(leases_key(self.namespace, name)))
        finally:
            await redis.aclose()


Start = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start(settings: Settings) -> AsyncIterator[Start]:
    """Start fakes named after the backends given, and the gateway in front of them."""
    async with AsyncExitStack() as stack:

        async def run(*backends: Backend, queue_timeout: float = 0.0, **fake: Any) -> Gateway:
            fakes: dict[str, Any] = {}
            live = []
            for b in backends:
                config = Config(models=list(DEFAULT_MODELS), **({"tokens": 6} | fake))
                app = create_fake(config, name=f"fake_{uuid.uuid4().hex[:8]}")
                url = await stack.enter_async_context(serving(app))
                fakes[b.name] = app
                live.append(
                    Backend(
                        b.name, url, weight=b.weight, max_concurrent=b.max_concurrent, group=b.group
                    )
                )
            configured = settings.with_(backends=tuple(live), backend_queue_timeout=queue_timeout)
            key = await _key(configured)
            app = create_app(configured, name=f"gw_{uuid.uuid4().hex[:8]}")
            url = await stack.enter_async_context(serving(app))
            auth = {"Authorization": f"Bearer {key}"}
            return Gateway(url, app, fakes, auth, configured.redis_namespace)

        yield run


@asynccontextmanager
async def client(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.auth, timeout=30) as http:
        yield http


def _outcomes(fake: Any) -> list[str]:
    return [
        r.get("decoded", {}).get("outcome")
        for r in fake.ctx.state.requests
        if r["path"] == "/api/chat"
    ]


async def test_freed_after_an_answer_and_after_an_upstream_error(start: Start) -> None:
    gw = await start(Backend("gpu", "http://x", max_concurrent=2))
    async with client(gw) as http:
        assert (await http.post("/api/chat", json=CHAT)).status_code == 200
        gw.configure("gpu", fault="error_before_first")
        failed = await http.post("/api/chat", json=CHAT)
        assert failed.status_code == 500  # Ollama's own error, relayed
        gw.configure("gpu", fault="midstream_error", fault_after=2)
        broken = await http.post("/api/chat", json=CHAT)
        assert "error" in broken.text.splitlines()[-1]
    assert await gw.settled() == [0] and await gw.leases("gpu") == 0


async def test_freed_when_the_backend_drops_the_connection_mid_stream(start: Start) -> None:
    gw = await start(Backend("gpu", "http://x", max_concurrent=2))
    gw.configure("gpu", fault="abrupt_close", fault_after=2)
    async with client(gw) as http:
        with pytest.raises(httpx.HTTPError):
            await http.post("/api/chat", json=CHAT)
    assert await gw.settled() == [0] and await gw.leases("gpu") == 0


async def test_freed_when_the_client_leaves_mid_stream(start: Start) -> None:
    gw = await start(Backend("gpu", "http://x", max_concurrent=2), tokens=200, pace_ms=20)
    async with client(gw) as http, http.stream("POST", "/api/chat", json=CHAT) as answer:
        async for _line in answer.aiter_lines():
            assert gw.registry.states[0].in_flight == 1
            break  # leave after the first line
    assert await gw.settled() == [0] and await gw.leases("gpu") == 0
    for _ in range(40):
        if gw.fakes["gpu"].ctx.state.cancellations:
            break
        await asyncio.sleep(0.05)
    assert gw.fakes["gpu"].ctx.state.cancellations  # the upstream request was closed too


async def test_freed_when_a_waiting_client_leaves(start: Start) -> None:
    gw = await start(Backend("gpu", "http://x", max_concurrent=1), queue_timeout=10.0, pace_ms=100)
    async with client(gw) as http:
        holder = asyncio.create_task(http.post("/api/chat", json=CHAT))  # about 0.6 s
        await asyncio.sleep(0.2)
        waiter = asyncio.create_task(http.post("/api/chat", json=CHAT))
        await asyncio.sleep(0.2)
        assert len(gw.registry.slots._queue) == 1
        waiter.cancel()  # the client gives up while queued
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (await holder).status_code == 200
    assert await gw.settled() == [0] and await gw.leases("gpu") == 0
    assert not gw.registry.slots._queue
    assert len(_outcomes(gw.fakes["gpu"])) == 1  # the one that left never reached the backend


async def test_a_queued_request_is_served_when_the_slot_frees(start: Start) -> None:
    gw = await start(Backend("gpu", "http://x", max_concurrent=1), queue_timeout=10.0, pace_ms=50)
    async with client(gw) as http:
        answers = await asyncio.gather(*(http.post("/api/chat", json=CHAT) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert gw.fakes["gpu"].ctx.state.load.peak == 1
    assert await gw.settled() == [0]


async def test_all_full_is_503_with_retry_after_in_each_surface(start: Start) -> None:
    gw = await start(Backend("gpu", "http://x", max_concurrent=1), pace_ms=100)
    async with client(gw) as http:
        holder = asyncio.create_task(http.post("/api/chat", json=CHAT))
        await asyncio.sleep(0.2)
        native = await http.post("/api/chat", json=CHAT)
        v1 = await http.post("/v1/chat/completions", json=CHAT)
        await holder
    assert native.status_code == v1.status_code == 503
    assert native.headers["retry-after"] == v1.headers["retry-after"] == "1"
    assert "max_concurrent" in native.json()["error"]
    assert v1.json()["error"]["code"] == "backends_full"
    assert await gw.settled() == [0]


async def test_a_busy_backend_fails_over_and_stays_in_service(start: Start) -> None:
    gw = await start(Backend("a", "http://x", group=0), Backend("b", "http://y", group=0))
    gw.configure("a", fault="busy")
    async with client(gw) as http:
        answers = [
            await http.post(path, json=CHAT) for path in ["/api/chat", "/v1/chat/completions"] * 4
        ]
    assert [a.status_code for a in answers] == [200] * 8
    assert _outcomes(gw.fakes["a"]) == ["busy"] * len(_outcomes(gw.fakes["a"]))
    assert len(_outcomes(gw.fakes["a"])) >= 2  # it was tried, answered busy, and not avoided
    assert all(s.healthy for s in gw.registry.states)
    assert await gw.settled() == [0, 0]
    busy = len(_outcomes(gw.fakes["a"]))  # each went on to b, and is counted once
    assert gw.sample("nzgw_failovers_total", backend="a", reason="busy") == busy
    assert gw.sample("nzgw_failovers_total", backend="b", reason="busy") == 0
    assert gw.sample("nzgw_backend_up", backend="a") == 1


async def test_every_backend_busy_is_503_with_retry_after(start: Start) -> None:
    gw = await start(Backend("a", "http://x", group=0), Backend("b", "http://y", group=0))
    gw.configure("a", fault="busy")
    gw.configure("b", fault="busy")
    async with client(gw) as http:
        native = await http.post("/api/chat", json=CHAT)
        v1 = await http.post("/v1/chat/completions", json=CHAT)
    assert native.status_code == v1.status_code == 503
    assert native.headers["retry-after"] == "1" and native.json()["error"].startswith(
        "server busy, please try again"
    )
    assert v1.json()["error"]["code"] == "backend_busy"
    assert all(s.healthy for s in gw.registry.states)
    assert await gw.settled() == [0, 0]
    # Each request went on from the first backend it tried to the other (then had no third).
    moved = [gw.sample("nzgw_failovers_total", backend=n, reason="busy") for n in "ab"]
    assert sum(moved) == 2


async def test_another_503_and_a_refused_connection(settings: Settings) -> None:
    """A 503 that is not Ollama's busy answer is relayed as it is; a refused one fails over."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/api/tags", "/api/version"):
            return httpx.Response(
                200, json={"models": [{"model": "llama3.2:latest"}], "version": "0.33.0"}
            )
        seen.append(request.url.host)
        if request.url.host == "down.invalid":
            raise httpx.ConnectError("refused", request=request)
        body = json.dumps({"error": "maintenance " * 1000}).encode()  # longer than the sniff

        async def chunks() -> AsyncIterator[bytes]:  # streamed, as from a real server
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        return httpx.Response(503, content=chunks(), headers={"content-type": "application/json"})

    backends = (Backend("down", "http://down.invalid"), Backend("other", "http://up.invalid"))
    configured = settings.with_(backends=backends)
    key = await _key(configured)
    app = create_app(
        configured, transport=httpx.MockTransport(handler), name=f"gw_{uuid.uuid4().hex[:8]}"
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
        states = app.ctx.worker.backends.states
        assert r.status_code == 503 and r.json() == {"error": "maintenance " * 1000}
        assert seen == ["down.invalid", "up.invalid"]
        assert not states[0].healthy and states[1].healthy
        assert [s.in_flight for s in states] == [0, 0]
        registry = app.ctx.worker.metrics.registry
        for name, value in [
            ("nzgw_failovers_total", {"backend": "down", "reason": "unreachable"}),
            ("nzgw_backend_up", {"backend": "other"}),
        ]:
            assert registry.get_sample_value(name, value) == 1, name
        assert registry.get_sample_value("nzgw_backend_up", {"backend": "down"}) == 0
        in_flight = [
            registry.get_sample_value("nzgw_backend_in_flight", {"backend": s.name}) for s in states
        ]
        assert in_flight == [0, 0]


@pytest.mark.parametrize("streamed", [False, True])
async def test_send_tells_the_busy_answer_from_other_503s(streamed: bool) -> None:
    answers = {
        "busy": b'{"error":"server busy, please try again.  maximum pending requests exceeded"}',
        "other": b'{"error":"upstream maintenance"}',
    }

    def handler(request: httpx.Request) -> httpx.Response:
        body = answers[request.url.path.strip("/")]

        async def once() -> AsyncIterator[bytes]:
            yield body

        return httpx.Response(503, content=once() if streamed else body)

    backend = Backend("b", "http://b")
    async with httpx.AsyncClient(base_url=backend.url, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(BackendBusy) as busy:
            await send(c, backend, "POST", "/busy", {}, b"{}")
        assert busy.value.status_code == 503 and busy.value.headers == {"Retry-After": "1"}
        other = await send(c, backend, "POST", "/other", {}, b"{}")
        assert other.status_code == 503
        assert b"".join([chunk async for chunk in other.aiter_raw()]) == answers["other"]
        await other.aclose()
