"""Claude Code's and Codex's surfaces in one process: /v1/messages and /v1/responses.

The official `anthropic` and `openai` SDKs against the gateway, in front of the fake Ollama app
(which follows Ollama's Anthropic and Responses middlewares).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from config import Backend, Settings
from models import AuditEvent
from server.admin import service
from server.admin.service import Changes
from server.app import create_app
from server.context import App
from server.stores.database import database
from tests.fake_ollama.app import create_app as create_fake
from tests.fake_ollama.models import DEFAULT_MODELS
from tests.fake_ollama.state import Config
from tests.inprocess import audit_events, serving

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@dataclass
class Stack:
    """The gateway, the fake's state, keys."""

    url: str
    app: App
    fake: Any
    key: str
    limited: str


async def _keys(settings: Settings) -> tuple[str, str]:
    async with database(settings):
        name = f"t{uuid.uuid4().hex[:8]}"
        await service.create_tenant(name, Changes(limits={"daily_tokens": 100_000}))
        key = (await service.create_key(name, "k")).key
        limited = (await service.create_key(name, "l", Changes(models=["qwen3:8b"]))).key
        return key, limited


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    fake = create_fake(
        Config(models=list(DEFAULT_MODELS), tokens=7), name=f"f{uuid.uuid4().hex[:8]}"
    )
    async with serving(fake) as fake_url:
        settings = settings.with_(backends=(Backend("main", fake_url),))
        key, limited = await _keys(settings)
        app = create_app(settings, name=f"gw_{uuid.uuid4().hex[:8]}")
        async with serving(app) as url:
            yield Stack(url, app, fake.ctx.state, key, limited)


async def _events(app: App) -> list[AuditEvent]:
    await app.ctx.worker.flush_audit()
    return await AuditEvent.all().order_by("time", "id")


def _headers_seen(stack: Stack) -> list[dict[str, str]]:
    return [r["headers"] for r in stack.fake.requests]


async def test_anthropic_messages_with_x_api_key_streamed_and_not(stack: Stack) -> None:
    client = anthropic.AsyncAnthropic(
        base_url=stack.url, api_key=stack.key, max_retries=0, default_headers={}
    )
    reply = await client.messages.create(model="llama3.2", max_tokens=50, messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.content[0].text and reply.usage.output_tokens == 7  # type: ignore[union-attr]
    async with client.messages.stream(
        model="llama3.2",
        max_tokens=50,
        messages=MESSAGES,  # type: ignore[arg-type]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text and final.usage.output_tokens == 7
    events = await audit_events(stack.app, 2)
    assert [(e.status, e.path, e.completion_tokens) for e in events] == [
        (200, "/v1/messages", 7),
        (200, "/v1/messages", 7),
    ]
    assert all(not e.tokens_estimated for e in events)
    assert events[0].prompt_tokens == reply.usage.input_tokens
    for headers in _headers_seen(stack):
        assert "x-api-key" not in headers and "nz_" not in str(headers)


async def test_x_api_key_and_bearer_must_agree(stack: Stack) -> None:
    body = {"model": "llama3.2", "max_tokens": 5, "messages": MESSAGES}
    async with httpx.AsyncClient(base_url=stack.url) as http:
        ok = await http.post("/v1/messages", json=body, headers={"x-api-key": stack.key})
        both = await http.post(
            "/v1/messages",
            json=body,
            headers={"x-api-key": stack.key, "authorization": f"Bearer {stack.limited}"},
        )
    assert ok.status_code == 200
    assert both.status_code == 401
    assert both.json()["type"] == "error" and both.json()["error"]["type"] == "authentication_error"


async def test_anthropic_errors_are_in_anthropics_shape(stack: Stack) -> None:
    client = anthropic.AsyncAnthropic(base_url=stack.url, api_key=stack.limited, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await client.messages.create(model="llama3.2", max_tokens=5, messages=MESSAGES)  # type: ignore[arg-type]
    assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    async with httpx.AsyncClient(base_url=stack.url, headers={"x-api-key": stack.key}) as http:
        missing = await http.post("/v1/messages", json={"model": "llama3.2", "messages": MESSAGES})
        zero = await http.post(
            "/v1/messages", json={"model": "llama3.2", "max_tokens": 0, "messages": MESSAGES}
        )
        count = await http.post("/v1/messages/count_tokens", json={"model": "llama3.2"})
    for answer in (missing, zero):
        assert answer.status_code == 400
        assert answer.json()["error"] == {
            "type": "invalid_request_error",
            "message": "max_tokens is required and must be positive",
        }
    assert count.status_code == 404 and count.json()["error"]["type"] == "not_found_error"


async def test_openai_responses_streamed_and_not(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.key, max_retries=0)
    reply = await client.responses.create(model="llama3.2", input="Why is the sky blue?")
    assert reply.output_text and reply.usage is not None and reply.usage.output_tokens == 7
    stream = await client.responses.create(model="llama3.2", input="Hi", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"
    events = await audit_events(stack.app, 2)
    assert [(e.status, e.completion_tokens, e.tokens_estimated) for e in events] == [
        (200, 7, False),
        (200, 7, False),
    ]
    limited = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.limited, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await limited.responses.create(model="llama3.2", input="x")
    assert refused.value.code == "forbidden"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": "llama3.2", "max_tokens": 10, "MAX_TOKENS": 100000}),
        ("/v1/messages", {"model": "llama3.2", "max_tokens": 0.5}),
        ("/v1/messages", {"model": "llama3.2", "max_tokens": "10"}),
        ("/v1/responses", {"model": "llama3.2", "max_output_tokens": 5, "Max_Output_Tokens": 9}),
        ("/v1/responses", {"model": "llama3.2", "max_output_tokens": 0.5}),
        ("/v1/responses", {"model": "llama3.2", "Model": "qwen3:8b"}),
    ],
)
async def test_governed_fields_of_the_agent_surfaces(
    stack: Stack, path: str, body: dict[str, Any]
) -> None:
    body = {**body, "messages": MESSAGES} if path == "/v1/messages" else {**body, "input": "x"}
    async with httpx.AsyncClient(base_url=stack.url, headers={"x-api-key": stack.key}) as http:
        answer = await http.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert stack.fake.requests == [] or all(r["path"] != path for r in stack.fake.requests)
