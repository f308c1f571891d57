"""The relay pipeline in one process: key, admission, forward, stream, settle, audit record."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import ollama
import openai
import pytest
from redis.asyncio import Redis

from config import Backend, Settings
from limits import RedisLimits, Subject
from models import AuditEvent
from server.accounting.admission import subject_of
from server.admin import service
from server.admin.service import Changes
from server.app import create_app
from server.context import App
from server.stores.database import database
from tests.conftest import REDIS_URL
from tests.fake_ollama.app import create_app as create_fake
from tests.fake_ollama.models import DEFAULT_MODELS
from tests.fake_ollama.state import Config
from tests.inprocess import audit_events, serving

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


@dataclass
class Stack:
    """A gateway and a fake Ollama in this process, and a key."""

    url: str
    key: str
    app: App
    limits: RedisLimits
    fake_requests: list[dict[str, object]]

    @property
    def auth(self) -> dict[str, str]:
        """The key's Authorization header."""
        return {"Authorization": f"Bearer {self.key}"}


async def _key(settings: Settings, **limits: int) -> str:
    async with database(settings):
        name = f"t{uuid.uuid4().hex[:8]}"
        await service.create_tenant(name, Changes(limits=limits))
        return (await service.create_key(name, "k")).key


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    """The fake served in-process, the gateway in front of it with Redis limits."""
    fake = create_fake(
        Config(models=list(DEFAULT_MODELS), tokens=6), name=f"fake_{uuid.uuid4().hex[:8]}"
    )
    async with serving(fake) as fake_url:
        settings = settings.with_(backends=(Backend("main", fake_url),))
        key = await _key(settings, daily_tokens=100_000)
        redis = Redis.from_url(REDIS_URL)
        limits = RedisLimits(redis, namespace=settings.redis_namespace, owns_client=False)
        app = create_app(settings, limits=limits, name=f"gw_{uuid.uuid4().hex[:8]}")
        try:
            async with serving(app) as url:
                yield Stack(url, key, app, limits, fake.ctx.state.requests)
        finally:
            await redis.aclose()


async def _flushed_events(app: App) -> list[AuditEvent]:
    await app.ctx.worker.flush_audit()
    return await AuditEvent.all().order_by("time", "id")


async def test_a_streamed_native_chat_is_relayed_charged_and_audited(stack: Stack) -> None:
    client = ollama.AsyncClient(host=stack.url, headers=stack.auth)
    parts = [part async for part in await client.chat(**CHAT, stream=True)]  # type: ignore[call-overload]
    final = parts[-1]
    assert final.done and final.eval_count == len(parts) - 1
    (event,) = await _flushed_events(stack.app)
    assert (event.status, event.model, event.backend) == (200, "llama3.2", "main")
    assert event.completion_tokens == final.eval_count
    assert event.prompt_tokens == final.prompt_eval_count and not event.tokens_estimated
    assert len(stack.app.ctx.worker.cache) == 1  # the verified key is cached for the next one
    tenant_usage, key_usage = await stack.limits.usage(_subject(stack))
    assert key_usage.day == tenant_usage.day == event.prompt_tokens + event.completion_tokens


def _subject(stack: Stack) -> Subject:
    """The limits subject of the stack's key (its principal is the one cached)."""
    cache = stack.app.ctx.worker.cache
    (principal,) = {cache.get(digest) for digest in cache._positive}
    assert principal is not None
    return subject_of(principal)


async def test_openai_stream_gets_no_usage_chunk_it_did_not_ask_for(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.key, max_retries=0)
    stream = await client.chat.completions.create(
        model="llama3.2",
        messages=CHAT["messages"],
        stream=True,  # type: ignore[arg-type]
    )
    chunks = [c async for c in stream]
    assert chunks and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = stack.fake_requests[-1]["body"]
    sent = json.loads(sent) if isinstance(sent, str) else sent
    assert isinstance(sent, dict) and sent["stream_options"] == {
        "include_usage": True
    }  # asked upstream, for metering
    (event,) = await _flushed_events(stack.app)
    assert event.completion_tokens == 6 and not event.tokens_estimated


async def test_refusals_are_answered_in_each_surface_shape_and_audited(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        native = await http.post("/api/chat", json=CHAT)
        v1 = await http.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "c-1"})
        blocked = await http.post("/api/pull", json={"model": "x"}, headers=stack.auth)
    assert native.status_code == v1.status_code == 401 and blocked.status_code == 403
    assert "missing API key" in native.json()["error"]
    assert v1.json()["error"]["code"] == "invalid_api_key" and v1.headers["x-request-id"] == "c-1"
    events = await audit_events(stack.app, 3)
    assert [(e.status, e.error) for e in events] == [
        (401, "invalid_api_key"),
        (401, "invalid_api_key"),
        (403, "blocked_endpoint"),
    ]
    assert events[1].client_request_id == "c-1" and events[1].request_id != "c-1"
    assert stack.fake_requests == [] or all(r["path"] != "/api/chat" for r in stack.fake_requests)


async def test_a_spent_budget_is_refused_before_the_backend(settings: Settings) -> None:
    fake = create_fake(
        Config(models=list(DEFAULT_MODELS), tokens=6), name=f"fake_{uuid.uuid4().hex[:8]}"
    )
    async with serving(fake) as fake_url:
        settings = settings.with_(backends=(Backend("main", fake_url),))
        key = await _key(settings, daily_tokens=1)
        app = create_app(settings, name=f"gw_{uuid.uuid4().hex[:8]}")
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
            auth = {"Authorization": f"Bearer {key}"}
            r = await http.post("/v1/chat/completions", json=CHAT, headers=auth)
            assert r.status_code == 429 and r.headers["x-should-retry"] == "false"
            assert r.headers["x-gateway-limit"] == "key:daily_tokens"
            assert r.json()["error"]["code"] == "insufficient_quota"
            assert not [q for q in fake.ctx.state.requests if q["path"].startswith("/v1/")]
            (event,) = await _flushed_events(app)
            assert (event.status, event.limit) == (429, "key:daily_tokens")


async def test_a_backend_that_refuses_connections_fails_over(settings: Settings) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "down.invalid":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/api/tags":
            return httpx.Response(200, json={"models": [{"model": "llama3.2:latest"}]})
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.33.0"})
        lines = [
            {"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"}, "done": False},
            {"model": "llama3.2", "done": True, "prompt_eval_count": 7, "eval_count": 1},
        ]

        async def body() -> AsyncIterator[bytes]:
            for line in lines:
                yield json.dumps(line).encode() + b"\n"

        return httpx.Response(200, content=body(), headers={"content-type": "application/x-ndjson"})

    backends = (Backend("first", "http://down.invalid"), Backend("second", "http://up.invalid"))
    settings = settings.with_(backends=backends)
    key = await _key(settings)
    transport = httpx.MockTransport(handler)
    app = create_app(settings, transport=transport, name=f"gw_{uuid.uuid4().hex[:8]}")
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.text.count("\n") == 2
        (event,) = await _flushed_events(app)
        assert (event.backend, event.prompt_tokens, event.completion_tokens) == ("second", 7, 1)
        assert not app.ctx.worker.backends.states[0].healthy


async def test_a_backend_timing_out_mid_answer_is_charged_the_reserved_output(
    settings: Settings,
) -> None:
    fake = create_fake(
        Config(models=list(DEFAULT_MODELS), tokens=50, pace_ms=100), name=f"f{uuid.uuid4().hex[:8]}"
    )
    async with serving(fake) as fake_url:
        settings = settings.with_(backends=(Backend("main", fake_url),), upstream_read_timeout=1.0)
        key = await _key(settings, daily_tokens=100_000)
        app = create_app(settings, name=f"gw_{uuid.uuid4().hex[:8]}")
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            body = {"model": "llama3.2", "prompt": "hi", "stream": False}
            r = await http.post(
                "/api/generate", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 504
            (event,) = await _flushed_events(app)
            assert (
                event.completion_tokens == 4096 and event.tokens_estimated
            )  # NON_STREAM_OUTPUT_CAP


async def test_a_bug_on_the_relay_path_is_a_500_and_recorded_as_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug, not an outage")

    monkeypatch.setattr(stack.limits, "admit", broken)
    async with httpx.AsyncClient(base_url=stack.url) as http:
        r = await http.post("/api/chat", json=CHAT, headers=stack.auth)
    assert r.status_code == 500 and r.json() == {"error": "internal gateway error"}
    assert "bug" not in r.text
    (event,) = await _flushed_events(stack.app)
    assert (event.status, event.error) == (500, "internal_error")


async def test_a_header_ollama_would_refuse_is_a_400_before_anything_is_charged(
    stack: Stack,
) -> None:
    host, port = stack.url.removeprefix("http://").split(":")
    body = json.dumps(CHAT).encode()
    for surface, path in (("api", "/api/chat"), ("v1", "/v1/chat/completions")):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {stack.key}\r\n".encode()
            + b"X-Trace: one\x00two\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        answer = await reader.read()
        writer.close()
        head, _, text = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), (surface, answer[:200])
        assert b"header 'x-trace' has a control character" in text
    relayed = [r for r in stack.fake_requests if "chat" in str(r["path"])]
    assert relayed == []  # nothing reached the backend (its probes did)
    events = await audit_events(stack.app, 2)
    assert [(e.status, e.prompt_tokens, e.completion_tokens) for e in events] == [(400, 0, 0)] * 2
    tenant_usage, key_usage = await stack.limits.usage(_subject(stack))
    assert tenant_usage.day == key_usage.day == 0
