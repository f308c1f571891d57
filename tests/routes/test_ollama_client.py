"""The official `ollama` client through the gateway gets what it gets from Ollama itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ollama
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.routes.compare import scrub
from tests.routes.conftest import Stack, relayed

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


def clients(stack: Stack, key: str | None = None) -> tuple[ollama.Client, ollama.Client]:
    """(through the gateway, straight to the fake)."""
    gateway = ollama.Client(host=stack.url, headers=stack.auth(key))
    return gateway, ollama.Client(host=stack.fake.url)


def same(call: Callable[[ollama.Client], Any], stack: Stack) -> Any:
    """Run `call` against both and assert equal answers; return the gateway's."""
    gateway, direct = clients(stack)
    through = call(gateway)
    if hasattr(through, "__next__"):
        through, expected = list(through), list(call(direct))
    else:
        expected = call(direct)
    assert scrub(through) == scrub(expected)
    return through


CALLS: dict[str, Callable[[ollama.Client], Any]] = {
    "chat": lambda c: c.chat(model="llama3.2", messages=MESSAGES),
    "chat-stream": lambda c: c.chat(model="llama3.2", messages=MESSAGES, stream=True),
    "generate": lambda c: c.generate(model="llama3.2", prompt="Tell me a story"),
    "generate-stream": lambda c: c.generate(model="llama3.2", prompt="Tell me", stream=True),
    "embed": lambda c: c.embed(model="all-minilm", input=["a sky", "blue grass"]),
    "embeddings": lambda c: c.embeddings(model="all-minilm", prompt="llamas"),
    "list": lambda c: c.list(),
    "show": lambda c: c.show("llama3.2"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_same_answer_as_ollama(stack: Stack, fake: FakeOllama, name: str) -> None:
    answer = same(CALLS[name], stack)
    if name.endswith("-stream"):
        assert len(answer) > 5 and answer[-1].done


def test_ps(stack: Stack, fake: FakeOllama) -> None:
    gateway, direct = clients(stack)
    direct.generate(model="llama3.2", prompt="warm up")
    assert [m.model for m in gateway.ps().models] == ["llama3.2:latest"]
    assert scrub(gateway.ps()) == scrub(direct.ps())


def test_list_is_limited_to_the_keys_models(stack: Stack, fake: FakeOllama) -> None:
    gateway, _ = clients(stack, stack.limited_key)
    names = sorted(m.model or "" for m in gateway.list().models)
    assert names == ["all-minilm:latest", "llama3.2:latest"]


@pytest.mark.parametrize("action", ["pull", "delete"])
def test_model_changes_are_forbidden(stack: Stack, fake: FakeOllama, action: str) -> None:
    gateway, _ = clients(stack)
    with pytest.raises(ollama.ResponseError) as err:
        getattr(gateway, action)("llama3.2")
    assert err.value.status_code == 403
    assert relayed(fake) == []


def test_error_statuses(stack: Stack, fake: FakeOllama) -> None:
    bad = ollama.Client(host=stack.url, headers={"Authorization": "Bearer nz_notavalidkey"})
    limited, _ = clients(stack, stack.limited_key)
    gateway, _ = clients(stack)
    throttled, _ = clients(stack, stack.rpm_key)
    throttled.embed(model="all-minilm", input="one")
    cases: list[tuple[int, Callable[[], Any]]] = [
        (401, lambda: bad.chat(model="llama3.2", messages=MESSAGES)),
        (403, lambda: limited.chat(model="qwen3:8b", messages=MESSAGES)),
        (403, lambda: limited.show("qwen3:8b")),
        (404, lambda: gateway.chat(model="no-such-model", messages=MESSAGES)),
        (429, lambda: throttled.embed(model="all-minilm", input="two")),
    ]
    for status, call in cases:
        with pytest.raises(ollama.ResponseError) as err:
            call()
        assert err.value.status_code == status, err.value
    fake.configure(fault="busy")
    with pytest.raises(ollama.ResponseError) as err:
        gateway.generate(model="llama3.2", prompt="hi")
    assert err.value.status_code == 503
    assert "server busy" in err.value.error


def test_midstream_error_line_is_passed_through(stack: Stack, fake: FakeOllama) -> None:
    fake.configure(fault="midstream_error", fault_after=3)
    gateway, direct = clients(stack)
    for client in (gateway, direct):
        seen: list[Any] = []
        with pytest.raises(ollama.ResponseError) as err:
            seen.extend(client.chat(model="llama3.2", messages=MESSAGES, stream=True))
        assert len(seen) == 3
        assert "an error was encountered while running the model" in err.value.error
