"""Streaming through the gateway: no buffering, disconnects close upstream, usage is settled."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import ollama
import openai
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import cli, create_key
from tests.routes.conftest import BACKEND_TOKEN, Stack, relayed

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


def test_first_chunk_arrives_while_the_fake_still_paces(stack: Stack, fake: FakeOllama) -> None:
    fake.configure(pace_ms=250, tokens=8)
    started = time.monotonic()
    with httpx.stream("POST", stack.url + "/api/chat", json=CHAT, headers=stack.auth()) as r:
        lines = r.iter_lines()
        first = json.loads(next(lines))
        first_at = time.monotonic() - started
        rest = [json.loads(line) for line in lines if line]
    total = time.monotonic() - started
    assert first["done"] is False and rest[-1]["done"] is True
    assert total >= 8 * 0.25 * 0.9
    assert first_at < total - 1.0, (first_at, total)


def test_many_concurrent_streams_all_start_at_once(stack: Stack, fake: FakeOllama) -> None:
    """80 streams over two workers (40 each, more than a small upstream pool would hold): every
    one's first chunk arrives before any of them ends."""
    fake.configure(pace_ms=60, tokens=20)

    async def one(client: httpx.AsyncClient) -> tuple[float, float]:
        started = time.monotonic()
        async with client.stream("POST", "/api/chat", json=CHAT, headers=stack.auth()) as r:
            lines = r.aiter_lines()
            await anext(lines)
            first = time.monotonic() - started
            async for _ in lines:
                pass
        return first, time.monotonic() - started

    async def run() -> list[tuple[float, float]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=stack.url, timeout=60, limits=limits) as client:
            return list(await asyncio.gather(*(one(client) for _ in range(80))))

    times = asyncio.run(run())
    latest_first = max(first for first, _ in times)
    earliest_end = min(end for _, end in times)
    assert latest_first < earliest_end, (latest_first, earliest_end)


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/chat", CHAT),
        ("/v1/chat/completions", {**CHAT, "stream": True}),
    ],
)
def test_disconnect_mid_stream_cancels_upstream(
    stack: Stack, fake: FakeOllama, path: str, body: dict[str, object]
) -> None:
    fake.configure(pace_ms=100, tokens=60)
    with httpx.stream("POST", stack.url + path, json=body, headers=stack.auth()) as r:
        next(r.iter_lines())
    gone = time.monotonic()
    (cancelled,) = fake.wait_cancellations(1, timeout=1.0)
    assert time.monotonic() - gone < 1.0
    assert cancelled["tokens_sent"] < 60


def test_disconnect_before_a_non_streamed_answer_cancels_upstream(
    stack: Stack, fake: FakeOllama
) -> None:
    fake.configure(pace_ms=100, tokens=60)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            stack.url + "/api/chat",
            json={**CHAT, "stream": False},
            headers=stack.auth(),
            timeout=httpx.Timeout(5.0, read=0.5),
        )
    (cancelled,) = fake.wait_cancellations(1, timeout=1.0)
    assert cancelled["stream"] is False


def test_abrupt_upstream_close_breaks_the_client_stream(stack: Stack, fake: FakeOllama) -> None:
    fake.configure(fault="abrupt_close", fault_after=3)
    got: list[str] = []
    with (
        pytest.raises(httpx.HTTPError),
        httpx.stream("POST", stack.url + "/api/chat", json=CHAT, headers=stack.auth()) as r,
    ):
        got.extend(line for line in r.iter_lines() if line)
    assert 0 < len(got) <= 3
    assert all('"done":true' not in line for line in got)
    # the relay's warning carries the request id and the key prefix (loguru contextualize)
    broke = [line for line in stack.gateway.log().splitlines() if "broke mid-response" in line]
    assert broke and all("request_id" in ln and stack.key[:11] in ln for ln in broke), broke


def test_credentials_never_reach_the_backend(stack: Stack, fake: FakeOllama) -> None:
    client = ollama.Client(host=stack.url, headers=stack.auth())
    client.chat(model="llama3.2", messages=CHAT["messages"])  # type: ignore[arg-type]
    client.show("llama3.2")
    client.list()
    oai = openai.OpenAI(base_url=stack.url + "/v1", api_key=stack.key, max_retries=0)
    oai.embeddings.create(model="all-minilm", input="x")
    httpx.get(
        stack.url + "/api/version",
        headers={
            **stack.auth(),
            "X-Api-Key": stack.key,
            "Connection": "keep-alive, X-Drop",
            "X-Drop": "1",
            "Cookie": "a=b",
        },
    )
    recorded = relayed(fake)
    assert len(recorded) >= 5
    for entry in recorded:
        headers = entry["headers"]
        assert headers["authorization"] == f"Bearer {BACKEND_TOKEN}"
        assert stack.key not in json.dumps(entry)
        assert headers["host"] == stack.fake.url.removeprefix("http://")
        assert not {"x-api-key", "cookie", "x-drop"} & set(headers)


def test_usage_is_settled_with_the_reported_tokens(stack: Stack, fake: FakeOllama) -> None:
    cli(stack.env, "create-tenant", "--name", "metered")
    key = create_key(stack.env, "metered", "m")
    through = ollama.Client(host=stack.url, headers=stack.auth(key))
    answer = through.chat(model="llama3.2", messages=CHAT["messages"])  # type: ignore[arg-type]
    embedded = through.embed(model="all-minilm", input=["one two", "three"])
    oai = openai.OpenAI(base_url=stack.url + "/v1", api_key=key, max_retries=0)
    list(oai.completions.create(model="llama3.2", prompt="Once upon a time", stream=True))
    direct = openai.OpenAI(base_url=stack.fake.url + "/v1", api_key="x", max_retries=0)
    chunks = list(
        direct.completions.create(
            model="llama3.2",
            prompt="Once upon a time",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.total_tokens > 0
    expected = (
        (answer.prompt_eval_count or 0)
        + (answer.eval_count or 0)
        + (embedded.prompt_eval_count or 0)
        + usage.total_tokens
    )
    report = httpx.get(stack.url + "/v1/usage", headers=stack.auth(key)).json()
    assert report["usage"]["key"]["day"] == expected


@pytest.mark.parametrize(
    "path,body,status",
    [
        ("/api/chat", b"{not json", 400),
        ("/api/chat", b"", 400),
        ("/api/chat", b"[1]", 400),
        ("/v1/chat/completions", b'{"messages": []}', 400),
        ("/api/chat", b'{"model": "llama3.2", "x": "' + b"a" * (11 * 1024 * 1024) + b'"}', 413),
    ],
)
def test_bad_requests_are_refused_by_the_gateway(
    stack: Stack, fake: FakeOllama, path: str, body: bytes, status: int
) -> None:
    r = httpx.post(stack.url + path, content=body, headers=stack.auth())
    assert r.status_code == status
    assert "x-request-id" in r.headers
    error = r.json()["error"]
    assert isinstance(error, dict if path.startswith("/v1") else str)
    assert relayed(fake) == []


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/nope"),
        ("POST", "/api/status"),
        ("POST", "/api/experimental/web_search"),
        ("GET", "/debug/pprof/"),
    ],
)
def test_paths_off_the_allow_list_are_404(
    stack: Stack, fake: FakeOllama, method: str, path: str
) -> None:
    r = httpx.request(method, stack.url + path, headers=stack.auth())
    assert r.status_code == 404
    assert "x-request-id" in r.headers
    assert relayed(fake) == []


def test_root_answers_without_a_key(stack: Stack, fake: FakeOllama) -> None:
    r = httpx.get(stack.url + "/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert httpx.head(stack.url + "/").status_code == 200
    assert httpx.get(stack.url + "/readyz").json()["checks"]["backends"] == "ok"
