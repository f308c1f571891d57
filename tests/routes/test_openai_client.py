"""The official `openai` client through the gateway gets what it gets from Ollama itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fake_ollama.runner import FakeOllama
from tests.routes.compare import scrub
from tests.routes.conftest import Stack, relayed

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Why is the sky blue?"}]


def clients(stack: Stack, key: str | None = None) -> tuple[openai.OpenAI, openai.OpenAI]:
    """(through the gateway, straight to the fake); no retries so errors show at once."""
    gateway = openai.OpenAI(base_url=stack.url + "/v1", api_key=key or stack.key, max_retries=0)
    return gateway, openai.OpenAI(base_url=stack.fake.url + "/v1", api_key="x", max_retries=0)


CALLS: dict[str, Callable[[openai.OpenAI], Any]] = {
    "chat": lambda c: c.chat.completions.create(model="llama3.2", messages=MESSAGES),
    "chat-stream": lambda c: c.chat.completions.create(
        model="llama3.2", messages=MESSAGES, stream=True
    ),
    "chat-stream-usage": lambda c: c.chat.completions.create(
        model="llama3.2", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ),
    "completion": lambda c: c.completions.create(model="llama3.2", prompt="Once upon a time"),
    "completion-stream": lambda c: c.completions.create(
        model="llama3.2", prompt="Once upon", stream=True
    ),
    "completion-stream-usage": lambda c: c.completions.create(
        model="llama3.2", prompt="Once", stream=True, stream_options={"include_usage": True}
    ),
    "embeddings": lambda c: c.embeddings.create(model="all-minilm", input=["a", "b c"]),
    "models": lambda c: c.models.list(),
    "model": lambda c: c.models.retrieve("llama3.2"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_same_answer_as_ollama(stack: Stack, fake: FakeOllama, name: str) -> None:
    gateway, direct = clients(stack)
    through, expected = CALLS[name](gateway), CALLS[name](direct)
    if name.endswith(("stream", "stream-usage")):
        through, expected = list(through), list(expected)
        assert len(through) > 5
        with_usage = [c for c in through if c.usage is not None]
        assert bool(with_usage) == name.endswith("usage")
    elif name == "models":
        through, expected = list(through), list(expected)
    assert scrub(through) == scrub(expected)


def test_upstream_was_asked_for_usage(stack: Stack, fake: FakeOllama) -> None:
    gateway, _ = clients(stack)
    list(gateway.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True))
    (sent,) = relayed(fake, "/v1/chat/completions")
    assert sent["body"]["stream_options"] == {"include_usage": True}


def test_models_are_limited_to_the_keys_models(stack: Stack, fake: FakeOllama) -> None:
    gateway, _ = clients(stack, stack.limited_key)
    assert sorted(m.id for m in gateway.models.list()) == ["all-minilm:latest", "llama3.2:latest"]
    with pytest.raises(openai.PermissionDeniedError):
        gateway.models.retrieve("qwen3:8b")


def test_error_classes(stack: Stack, fake: FakeOllama) -> None:
    bad, _ = clients(stack, "nz_notavalidkey")
    limited, _ = clients(stack, stack.limited_key)
    gateway, _ = clients(stack)
    throttled, _ = clients(stack, stack.rpm_key)
    try:
        throttled.embeddings.create(model="all-minilm", input="first")
    except openai.RateLimitError:
        pass  # the ollama-client test may have used this minute's request already
    cases: list[tuple[type[Exception], Callable[[], Any]]] = [
        (openai.AuthenticationError, lambda: bad.models.list()),
        (
            openai.PermissionDeniedError,
            lambda: limited.chat.completions.create(model="qwen3:8b", messages=MESSAGES),
        ),
        (
            openai.NotFoundError,
            lambda: gateway.chat.completions.create(model="no-such-model", messages=MESSAGES),
        ),
        (openai.RateLimitError, lambda: throttled.embeddings.create(model="all-minilm", input="x")),
        (
            openai.BadRequestError,
            lambda: gateway.chat.completions.create(model="", messages=MESSAGES),
        ),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
    fake.configure(fault="busy")
    with pytest.raises(openai.InternalServerError) as err:
        gateway.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert err.value.status_code == 503


def test_rate_limit_headers(stack: Stack, fake: FakeOllama) -> None:
    rated, _ = clients(stack, stack.rated_key)
    raw = rated.chat.completions.with_raw_response.create(
        model="llama3.2", messages=MESSAGES, stream=True
    )
    assert raw.headers["x-ratelimit-limit-requests"] == "1000"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < 1000
    assert raw.headers["content-type"] == "text/event-stream"
    list(raw.parse())
    throttled, _ = clients(stack, stack.rpm_key)
    with pytest.raises(openai.RateLimitError) as err:
        for _ in range(2):
            throttled.embeddings.create(model="all-minilm", input="x")
    headers = err.value.response.headers
    assert headers["x-gateway-limit"].endswith(":requests")
    assert int(headers["retry-after"]) >= 1
    assert "x-request-id" in headers
