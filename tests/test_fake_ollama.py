"""Self-checks of the fake Ollama server against the official ollama and openai clients."""

from __future__ import annotations

import base64
import json
import math
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.fake_ollama.runner import FakeOllama

SKY = "Why is the sky blue?"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": SKY}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOllama) -> FakeOllama:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeOllama) -> ollama.Client:
    return ollama.Client(host=fake.url)


@pytest.fixture
def oai(fake: FakeOllama) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def claude(fake: FakeOllama) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-test", max_retries=0)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def sse_payloads(text: str) -> list[str]:
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: ") :] for e in events]


# --- basics -------------------------------------------------------------------------------


def test_root_version_404_405(fake: FakeOllama) -> None:
    root = httpx.get(fake.url + "/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"] == "text/plain; charset=utf-8"
    assert httpx.head(fake.url + "/").status_code == 200
    version = httpx.get(fake.url + "/api/version")
    assert version.json() == {"version": "0.33.0"}
    assert version.headers["content-type"] == "application/json; charset=utf-8"
    fake.configure(version="1.2.3")
    assert httpx.get(fake.url + "/api/version").json() == {"version": "1.2.3"}
    missing = httpx.get(fake.url + "/api/nope")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    assert missing.headers["content-type"] == "text/plain"
    wrong = httpx.get(fake.url + "/api/chat")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")
    assert httpx.get(fake.url + "/v1/models/a/b").status_code == 404


def test_requests_are_recorded(fake: FakeOllama, client: ollama.Client) -> None:
    client.list()
    httpx.post(
        fake.url + "/api/show",
        json={"model": "llama3.2"},
        headers={"Authorization": "Bearer secret", "X-Custom": "v"},
    )
    records = fake.requests()
    assert [r["path"] for r in records] == ["/api/tags", "/api/show"]
    show = records[1]
    assert show["method"] == "POST"
    assert show["body"] == {"model": "llama3.2"}
    assert show["headers"]["authorization"] == "Bearer secret"
    assert show["headers"]["x-custom"] == "v"
    assert records[0]["headers"]["user-agent"].startswith("ollama-python/")
    assert not any(r["path"].startswith("/_fake") for r in fake.requests())


def test_require_token(fake: FakeOllama) -> None:
    fake.configure(require_token="tok")
    denied = httpx.get(fake.url + "/api/tags")
    assert (denied.status_code, denied.json()) == (401, {"error": "unauthorized"})
    ok = httpx.get(fake.url + "/api/tags", headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200


def test_validation_errors(fake: FakeOllama) -> None:
    def post(path: str, content: bytes) -> httpx.Response:
        return httpx.post(fake.url + path, content=content)

    assert post("/api/chat", b"").json() == {"error": "missing request body"}
    bad = post("/api/chat", b"xyz")
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "invalid character 'x' looking for beginning of value"},
    )
    assert post("/api/chat", b"{}").json() == {"error": "model is required"}
    generate = post("/api/generate", b"{}")
    assert (generate.status_code, generate.json()) == (404, {"error": "model '' not found"})
    typed = post("/api/chat", b'{"model":"llama3.2","messages":"hi"}')
    assert typed.json() == {
        "error": "json: cannot unmarshal string into Go struct field "
        "ChatRequest.messages of type []api.Message"
    }
    empty = post("/v1/chat/completions", b'{"model":"llama3.2","messages":[]}')
    assert empty.status_code == 400
    assert empty.json() == {
        "error": {
            "message": "[] is too short - 'messages'",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    enc = post("/v1/embeddings", b'{"model":"all-minilm","input":"a","encoding_format":"x"}')
    assert enc.json()["error"]["message"] == (
        "Invalid value for 'encoding_format' = x. Supported values: ['float', 'base64']."
    )


# --- native generation ----------------------------------------------------------------------


def test_chat_non_stream_is_deterministic(client: ollama.Client) -> None:
    first = client.chat(model="llama3.2", messages=MESSAGES)
    second = client.chat(model="llama3.2", messages=MESSAGES)
    assert first.message.role == "assistant"
    assert first.message.content and first.message.content == second.message.content
    assert first.model == "llama3.2"
    assert (first.done, first.done_reason, first.eval_count) == (True, "stop", 12)
    assert first.prompt_eval_count is not None and 26 <= first.prompt_eval_count <= 31
    assert first.total_duration is not None and first.eval_duration is not None
    assert first.load_duration is not None and first.prompt_eval_duration is not None
    assert first.total_duration >= (
        first.load_duration + first.prompt_eval_duration + first.eval_duration
    )
    other = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Other?"}])
    assert other.message.content != first.message.content


def test_chat_stream_matches_non_stream(client: ollama.Client) -> None:
    chunks = list(client.chat(model="LLAMA3.2:latest", messages=MESSAGES, stream=True))
    whole = client.chat(model="llama3.2", messages=MESSAGES)
    assert all(c.model == "LLAMA3.2:latest" for c in chunks)
    assert [c.done for c in chunks] == [False] * 12 + [True]
    assert "".join(c.message.content or "" for c in chunks) == whole.message.content
    assert chunks[-1].message.content == "" and chunks[-1].eval_count == 12
    stamps = [c.created_at or "" for c in chunks]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_generate_stream_and_cap(client: ollama.Client) -> None:
    chunks = list(client.generate(model="llama3.2", prompt=SKY, stream=True))
    final = chunks[-1]
    assert final.done and final.done_reason == "stop" and final.context is not None
    assert final.prompt_eval_count is not None and final.eval_count == 12
    assert len(final.context) == final.prompt_eval_count + final.eval_count
    assert all(0 <= t <= 128255 for t in final.context)
    capped = client.generate(model="llama3.2", prompt=SKY, options={"num_predict": 5})
    assert (capped.eval_count, capped.done_reason) == (5, "length")
    text = "".join(c.response or "" for c in chunks)
    assert text.startswith(capped.response or "")
    raw = client.generate(model="llama3.2", prompt=SKY, raw=True)
    assert raw.context is None
    assert raw.prompt_eval_count == math.ceil(len(SKY) / 4)


def test_load_and_unload(fake: FakeOllama, client: ollama.Client) -> None:
    loaded = client.generate(model="llama3.2")
    assert (loaded.done_reason, loaded.response) == ("load", "")
    assert [m.model for m in client.ps().models] == ["llama3.2:latest"]
    unloaded = client.chat(model="llama3.2", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert client.ps().models == []
    streamed = httpx.post(fake.url + "/api/generate", json={"model": "llama3.2"})
    assert streamed.headers["content-type"] == "application/json; charset=utf-8"


def test_thinking_and_tools(client: ollama.Client, oai: openai.OpenAI) -> None:
    thought = client.chat(model="qwen3:8b", messages=MESSAGES, think=True)
    assert thought.message.thinking and thought.message.content
    stream = list(client.chat(model="qwen3:8b", messages=MESSAGES, stream=True))
    kinds = ["t" if c.message.thinking else "c" for c in stream[:-1]]
    assert kinds == sorted(kinds, reverse=True) and "t" in kinds and "c" in kinds
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3.2", messages=MESSAGES, think=True)
    assert (err.value.status_code, err.value.error) == (400, '"llama3.2" does not support thinking')
    tool: ChatCompletionToolParam = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    called = client.chat(model="llama3.2", messages=MESSAGES, tools=[tool])
    calls = called.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]
    assert isinstance(calls[0].function.arguments["city"], str)
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="all-minilm", messages=MESSAGES)
    assert err.value.status_code == 400
    completion = oai.chat.completions.create(model="llama3.2", messages=MESSAGES, tools=[tool])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    first_call = choice.message.tool_calls[0]
    assert first_call.type == "function" and json.loads(first_call.function.arguments)


def test_format_json(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    }
    reply = client.chat(model="llama3.2", messages=MESSAGES, format=schema)
    data = json.loads(reply.message.content or "")
    assert set(data) == {"name", "age"} and isinstance(data["age"], int)


# --- embeddings, listing, management --------------------------------------------------------


def test_embed(client: ollama.Client) -> None:
    result = client.embed(model="all-minilm", input=["Why is the sky blue?", "Grass?"])
    assert result.model == "all-minilm"
    assert [len(v) for v in result.embeddings] == [384, 384]
    for vector in result.embeddings:
        assert math.isclose(sum(x * x for x in vector), 1.0, abs_tol=1e-4)
    again = client.embed(model="all-minilm", input="Why is the sky blue?")
    assert again.embeddings[0] == result.embeddings[0]
    short = client.embed(model="nomic-embed-text", input="x", dimensions=64)
    assert len(short.embeddings[0]) == 64
    assert client.embed(model="all-minilm", input=[]).embeddings == []
    legacy = client.embeddings(model="all-minilm", prompt="hello")
    assert len(legacy.embedding) == 384
    assert client.embeddings(model="all-minilm", prompt="").embedding == []


def test_list_show_ps(client: ollama.Client) -> None:
    names = {m.model for m in client.list().models}
    assert names == {"llama3.2:latest", "qwen3:8b", "all-minilm:latest", "nomic-embed-text:latest"}
    shown = client.show("llama3.2")
    assert shown.modelinfo is not None and shown.modelinfo["llama.context_length"] == 131072
    assert shown.capabilities == ["completion", "tools"]
    assert shown.details is not None and shown.details.family == "llama"
    assert client.ps().models == []
    client.generate(model="llama3.2", prompt="hi", keep_alive="10m")
    client.embed(model="all-minilm", input="hi", keep_alive=-1)
    running = client.ps().models
    assert [m.model for m in running] == ["all-minilm:latest", "llama3.2:latest"]
    assert running[1].size_vram and running[1].context_length == 4096


def test_model_management(fake: FakeOllama, client: ollama.Client, tmp_path: Path) -> None:
    statuses = [p.status for p in client.pull("llama3.2", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses
    with pytest.raises(ollama.ResponseError) as err:
        list(client.pull("does-not-exist", stream=True))
    assert err.value.error == "pull model manifest: file does not exist"
    with pytest.raises(ollama.ResponseError) as err:
        client.pull("does-not-exist")
    assert err.value.status_code == 500
    assert client.delete("qwen3:8b").status == "success"
    assert "qwen3:8b" not in {m.model for m in client.list().models}
    with pytest.raises(ollama.ResponseError) as err:
        client.delete("qwen3:8b")
    assert (err.value.status_code, err.value.error) == (404, "model 'qwen3:8b' not found")
    assert client.pull("qwen3:8b").status == "success"
    assert client.copy("llama3.2", "backup").status == "success"
    assert client.create(model="mario", from_="llama3.2", system="Mario").status == "success"
    assert {"backup:latest", "mario:latest", "qwen3:8b"} <= {m.model for m in client.list().models}
    assert client.chat(model="mario", messages=MESSAGES).message.content
    pushed = [p.status for p in client.push("mario", stream=True)]
    assert pushed[0] == "retrieving manifest" and pushed[-1] == "success"
    blob = tmp_path / "weights.gguf"
    blob.write_bytes(b"fake weights")
    digest = client.create_blob(blob)
    assert httpx.head(f"{fake.url}/api/blobs/{digest}").status_code == 200
    mismatch = httpx.post(f"{fake.url}/api/blobs/sha256:{'0' * 64}", content=b"x")
    assert mismatch.status_code == 400 and "digest mismatch" in mismatch.json()["error"]
    assert httpx.post(f"{fake.url}/api/blobs/bad", content=b"x").json() == {
        "error": "invalid digest format"
    }
    fake.configure(models=[])
    assert client.list().models == []
    assert httpx.get(fake.url + "/v1/models").json() == {"object": "list", "data": None}


def test_not_found_errors(client: ollama.Client, oai: openai.OpenAI) -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: client.chat(model="nope", messages=MESSAGES), "model 'nope' not found"),
        (lambda: client.generate(model="nope", prompt="x"), "model 'nope' not found"),
        (
            lambda: client.embed(model="nope", input="x"),
            'model "nope" not found, try pulling it first',
        ),
        (lambda: client.show("nope"), "model 'nope:latest' not found"),
    ]
    for call, message in cases:
        with pytest.raises(ollama.ResponseError) as err:
            call()
        assert (err.value.status_code, err.value.error) == (404, message)
    with pytest.raises(openai.NotFoundError) as oerr:
        oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert oerr.value.body == {
        "message": "model 'gpt-4o' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope")
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="nope", input="x")


# --- OpenAI compatibility -------------------------------------------------------------------


def test_openai_chat(client: ollama.Client, oai: openai.OpenAI) -> None:
    native = client.chat(model="llama3.2", messages=MESSAGES)
    completion = oai.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.system_fingerprint == "fp_ollama"
    assert completion.choices[0].message.content == native.message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == native.prompt_eval_count
    assert completion.usage.completion_tokens == native.eval_count
    capped = oai.chat.completions.create(model="llama3.2", messages=MESSAGES, max_tokens=3)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage is not None and capped.usage.completion_tokens == 3
    # openai.ChatCompletionRequest has no max_completion_tokens field: Ollama ignores it
    ignored = oai.chat.completions.create(
        model="llama3.2", messages=MESSAGES, max_completion_tokens=3
    )
    assert ignored.choices[0].finish_reason == "stop"
    assert ignored.usage is not None and ignored.usage.completion_tokens == 12


def test_openai_chat_stream(oai: openai.OpenAI, fake: FakeOllama) -> None:
    plain = list(oai.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True))
    assert plain[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in plain[1:])
    assert plain[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in plain)
    with_usage = list(
        oai.chat.completions.create(
            model="llama3.2", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens == 12
    text = "".join(c.choices[0].delta.content or "" for c in plain)
    assert text == "".join(c.choices[0].delta.content or "" for c in with_usage[:-1])
    raw = httpx.post(
        fake.url + "/v1/chat/completions",
        json={"model": "llama3.2", "messages": MESSAGES, "stream": True},
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert "content-length" not in raw.headers
    payloads = sse_payloads(raw.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert not any("usage" in c for c in chunks)
    assert chunks[-1]["choices"][0]["delta"] == {}


def test_openai_completions(oai: openai.OpenAI, fake: FakeOllama) -> None:
    completion = oai.completions.create(model="llama3.2", prompt="Once upon a time")
    assert completion.id.startswith("cmpl-") and completion.object == "text_completion"
    assert completion.choices[0].text and completion.usage is not None
    assert completion.usage.completion_tokens == 12
    streamed = list(
        oai.completions.create(
            model="llama3.2", prompt="Once upon a time", stream=True, max_tokens=4
        )
    )
    assert "".join(c.choices[0].text for c in streamed) == " ".join(
        completion.choices[0].text.split(" ")[:4]
    )
    assert streamed[-1].choices[0].finish_reason == "length"
    raw = httpx.post(
        fake.url + "/v1/completions",
        json={
            "model": "llama3.2",
            "prompt": "x",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    chunks = [json.loads(p) for p in sse_payloads(raw.text)[:-1]]
    assert all(
        c["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for c in chunks[:-1]
    )
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12


def test_openai_embeddings_and_models(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="all-minilm", input=["a", "b"])
    assert [len(d.embedding) for d in result.data] == [384, 384]
    assert result.usage.prompt_tokens == result.usage.total_tokens > 0
    b64 = oai.embeddings.with_raw_response.create(
        model="all-minilm", input="a", encoding_format="base64"
    )
    encoded = json.loads(b64.text)["data"][0]["embedding"]
    floats = struct.unpack("<384f", base64.b64decode(encoded))
    assert all(
        math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
        for x, y in zip(floats, result.data[0].embedding, strict=True)
    )
    models = oai.models.list()
    assert {m.id for m in models.data} >= {"llama3.2:latest", "qwen3:8b"}
    assert all(m.owned_by == "library" for m in models.data)
    assert oai.models.retrieve("llama3.2").id == "llama3.2"


# --- streaming behaviour, cancellation, faults ----------------------------------------------


def test_stream_framing(fake: FakeOllama) -> None:
    with httpx.stream(
        "POST", fake.url + "/api/chat", json={"model": "llama3.2", "messages": MESSAGES}
    ) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        lines = [json.loads(line) for line in response.iter_lines()]
    assert lines[-1]["done"] is True and len(lines) == 13


def test_pacing(fake: FakeOllama, client: ollama.Client) -> None:
    fake.configure(pace_ms=60, tokens=6, first_byte_ms=100)
    started = time.monotonic()
    arrivals = [
        time.monotonic() - started
        for _ in client.generate(model="llama3.2", prompt="x", stream=True)
    ]
    assert arrivals[0] >= 0.09
    assert arrivals[-1] - arrivals[0] >= 0.3  # 6 gaps of 60 ms after the first chunk
    assert arrivals[0] < arrivals[-1] - 0.25  # the first chunk was not buffered


def test_openai_timeout(fake: FakeOllama) -> None:
    fake.configure(first_byte_ms=800)
    slow = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        slow.chat.completions.create(model="llama3.2", messages=MESSAGES)
    records = fake.wait_cancellations(1)
    assert records and records[0]["tokens_sent"] == 0


def test_cancellation_streaming(fake: FakeOllama) -> None:
    fake.configure(pace_ms=30, tokens=200)
    with httpx.stream(
        "POST",
        fake.url + "/api/chat",
        headers={"x-request-id": "req-1"},
        json={"model": "llama3.2", "messages": MESSAGES},
    ) as response:
        lines = response.iter_lines()
        next(lines), next(lines)
    closed = time.monotonic()
    records = fake.wait_cancellations(1)
    assert time.monotonic() - closed < 0.5
    assert len(records) == 1
    record = records[0]
    assert (record["path"], record["request_id"], record["stream"]) == ("/api/chat", "req-1", True)
    assert 2 <= record["tokens_sent"] < 20


def test_cancellation_non_stream(fake: FakeOllama) -> None:
    fake.configure(pace_ms=30, tokens=200)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            fake.url + "/v1/chat/completions",
            timeout=0.25,
            json={"model": "llama3.2", "messages": MESSAGES},
        )
    records = fake.wait_cancellations(1)
    assert [(r["path"], r["stream"]) for r in records] == [("/v1/chat/completions", False)]
    assert records[0]["tokens_sent"] < 20


def test_fault_error_before_first(
    fake: FakeOllama, client: ollama.Client, oai: openai.OpenAI
) -> None:
    fake.configure(fault="error_before_first")
    raw = httpx.post(fake.url + "/api/generate", json={"model": "llama3.2", "prompt": "x"})
    assert raw.status_code == 500 and raw.headers["content-type"] == "application/json"
    assert "error" in raw.json()
    with pytest.raises(ollama.ResponseError) as err:
        list(client.chat(model="llama3.2", messages=MESSAGES, stream=True))
    assert err.value.status_code == 500
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="llama3.2", messages=MESSAGES)


def test_fault_midstream_native(fake: FakeOllama, client: ollama.Client) -> None:
    fake.configure(fault="midstream_error", fault_after=3)
    raw = httpx.post(fake.url + "/api/chat", json={"model": "llama3.2", "messages": MESSAGES})
    lines = ndjson(raw)
    assert raw.status_code == 200 and len(lines) == 4
    assert lines[-1] == {"error": "an error was encountered while running the model"}
    assert not any(line.get("done") for line in lines)
    received: list[ollama.GenerateResponse] = []
    with pytest.raises(ollama.ResponseError) as err:  # extend() keeps items read before the error
        received.extend(client.generate(model="llama3.2", prompt="x", stream=True))
    assert len(received) == 3 and err.value.error == lines[-1]["error"]
    with pytest.raises(ollama.ResponseError) as err:
        client.generate(model="llama3.2", prompt="x")
    assert err.value.status_code == 500


def test_fault_midstream_openai(fake: FakeOllama, oai: openai.OpenAI) -> None:
    fake.configure(fault="midstream_error", fault_after=2)
    raw = httpx.post(
        fake.url + "/v1/chat/completions",
        json={"model": "llama3.2", "messages": MESSAGES, "stream": True},
    )
    payloads = sse_payloads(raw.text)
    assert "[DONE]" not in payloads and len(payloads) == 3
    last = json.loads(payloads[-1])
    assert last["model"] == "" and last["choices"][0]["delta"] == {"content": ""}
    chunks = list(oai.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True))
    assert len(chunks) == 3 and chunks[-1].choices[0].finish_reason is None


def assert_busy(client: ollama.Client, oai: openai.OpenAI, stream: bool = False) -> None:
    """One native and one OpenAI request, both answered 503 "server busy" before any byte."""
    with pytest.raises(ollama.ResponseError) as err:
        list(client.chat(model="llama3.2", messages=MESSAGES, stream=True)) if stream else (
            client.chat(model="llama3.2", messages=MESSAGES)
        )
    assert (err.value.status_code, err.value.error) == (
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    )
    with pytest.raises(openai.InternalServerError) as oerr:
        oai.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert oerr.value.status_code == 503


def test_fault_busy_and_load_timeout(
    fake: FakeOllama, client: ollama.Client, oai: openai.OpenAI
) -> None:
    fake.configure(fault="busy")
    assert_busy(client, oai)
    fake.configure(fault="load_timeout", first_byte_ms=150)
    started = time.monotonic()
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model="all-minilm", input="x")
    assert time.monotonic() - started >= 0.14
    assert (err.value.status_code, err.value.error) == (
        500,
        "timed out waiting for llama runner to start - progress 0.00 - ",
    )


def test_fault_abrupt_close(fake: FakeOllama, client: ollama.Client) -> None:
    fake.configure(fault="abrupt_close", fault_after=2)
    received: list[ollama.ChatResponse] = []
    with pytest.raises(httpx.RemoteProtocolError):  # extend() keeps items read before the error
        received.extend(client.chat(model="llama3.2", messages=MESSAGES, stream=True))
    assert len(received) == 2
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            fake.url + "/api/generate", json={"model": "llama3.2", "prompt": "x", "stream": False}
        )
    assert fake.cancellations() == []
    assert [v["outcome"] for v in fake.decoded()] == ["error", "error"]
    assert fake.decoded()[0]["generated"] == 2
    fake.configure(fault=None)
    assert client.chat(model="llama3.2", messages=MESSAGES).done


def test_restart_keeps_port(server: FakeOllama) -> None:
    port = server.port
    server.configure(version="9.9.9")
    server.restart()
    assert server.port == port
    assert httpx.get(server.url + "/api/version").json() == {"version": "0.33.0"}


# --- Go decoding, through HTTP ----------------------------------------------------------------


def post(fake: FakeOllama, path: str, body: bytes | str | dict[str, Any]) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(fake.url + path, json=body)
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return httpx.post(fake.url + path, content=raw)


def last_view(fake: FakeOllama) -> dict[str, Any]:
    return fake.decoded()[-1]


def chat_body(extra: str) -> str:
    return '{"messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":false,' + extra


def test_keys_match_fields_as_go_does(fake: FakeOllama) -> None:
    cases = [
        ('"model":"nope","Model":"llama3.2"}', "llama3.2"),  # the last spelling wins
        ('"MODEL":"llama3.2"}', "llama3.2"),
        ('"mod\\u0065l":"llama3.2"}', "llama3.2"),
        ('"model":"LLAMA3.2:latest"}', "LLAMA3.2:latest"),  # echoed as sent
    ]
    for extra, model in cases:
        reply = post(fake, "/api/chat", chat_body(extra))
        assert (reply.status_code, reply.json()["model"]) == (200, model), extra
        assert last_view(fake)["model"] == model
    folded = post(fake, "/api/chat", chat_body('"model":"llama3.2","optionſ":{"num_predict":3}}'))
    assert (folded.json()["eval_count"], folded.json()["done_reason"]) == (3, "length")
    assert last_view(fake)["options"] == {"num_predict": 3.0}
    assert last_view(fake)["num_predict"] == 3
    kelvin = post(fake, "/api/chat", chat_body('"model":"llama3.2","\u212aeep_alive":"10m"}'))
    assert kelvin.status_code == 200 and last_view(fake)["keep_alive_ns"] == 600_000_000_000
    nested = post(
        fake,
        "/api/chat",
        '{"model":"llama3.2","stream":false,"MESSAGES":[{"ROLE":"USER","Content":"Why is the sky blue?"}]}',
    )
    plain = post(fake, "/api/chat", chat_body('"model":"llama3.2"}'))
    assert nested.json()["prompt_eval_count"] == plain.json()["prompt_eval_count"]
    assert nested.json()["message"]["content"] == plain.json()["message"]["content"]
    trailing = post(fake, "/api/chat", chat_body('"model":"llama3.2"} {"model":"x"} garbage'))
    assert trailing.status_code == 200


def test_options_map_as_ollama_reads_it(fake: FakeOllama) -> None:
    def run(options: str) -> dict[str, Any]:
        reply = post(
            fake,
            "/api/generate",
            f'{{"model":"llama3.2","prompt":"hi","stream":false,"options":{options}}}',
        )
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        return data

    assert run('{"NUM_PREDICT":3}')["eval_count"] == 12  # map keys match exactly
    assert run('{"num_predict":0.5}')["eval_count"] == 12  # truncated to 0: no limit
    assert last_view(fake)["num_predict"] is None
    assert run('{"num_predict":-1}')["eval_count"] == 12
    assert run('{"num_predict":1e300}')["eval_count"] == 12  # MinInt64: no limit
    capped = run('{"num_predict":4.9}')
    assert (capped["eval_count"], capped["done_reason"]) == (4, "length")
    assert run('{"num_predict":5,"num_predict":2}')["eval_count"] == 2
    assert run('{"num_predict":5},"options":{"seed":1}')["eval_count"] == 5  # maps merge
    bad = post(
        fake, "/api/generate", '{"model":"llama3.2","prompt":"hi","options":{"num_ctx":"x"}}'
    )
    assert (bad.status_code, bad.json()) == (
        500,
        {"error": 'option "num_ctx" must be of type integer'},
    )


def test_go_decoding_errors_over_http(fake: FakeOllama) -> None:
    nan = post(
        fake, "/api/chat", '{"model":"llama3.2","messages":[],"options":{"temperature":NaN}}'
    )
    assert (nan.status_code, nan.json()) == (
        400,
        {"error": "invalid character 'N' looking for beginning of value"},
    )
    inf = post(fake, "/api/chat", '{"model":"llama3.2","options":{"temperature":Infinity}}')
    assert inf.status_code == 400
    fraction = post(
        fake, "/v1/chat/completions", {"model": "llama3.2", "messages": MESSAGES, "max_tokens": 0.5}
    )
    assert fraction.status_code == 400
    assert fraction.headers["content-type"] == "application/json; charset=utf-8"
    assert fraction.json()["error"] == {
        "message": "json: cannot unmarshal number 0.5 into Go struct field "
        "ChatCompletionRequest.max_tokens of type int",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    unknown = post(fake, "/api/chat", b'{"model":"llama3.2\xff","messages":[]}')
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "model 'llama3.2\ufffd' not found"},
    )
    surrogate = post(
        fake,
        "/api/chat",
        chat_body('"model":"llama3.2","messages":[{"role":"user","content":"\\ud800"}]}'),
    )
    assert surrogate.status_code == 200
    keep_alive = post(fake, "/api/generate", '{"model":"llama3.2","keep_alive":true}')
    assert (keep_alive.status_code, keep_alive.json()) == (
        400,
        {"error": "Unsupported type: 'bool'"},
    )


def test_v1_fields_as_go_decodes_them(fake: FakeOllama) -> None:
    reply = post(
        fake,
        "/v1/chat/completions",
        '{"model":"llama3.2","messages":[{"ROLE":"user","CONTENT":"Why is the sky blue?"}],'
        '"max_tokens":2,"MAX_TOKENS":4}',
    )
    assert reply.json()["usage"]["completion_tokens"] == 4
    view = last_view(fake)
    assert view["options"] == {"num_predict": 4, "temperature": 1.0, "top_p": 1.0}
    assert (view["num_predict"], view["stream"], view["done_reason"]) == (4, False, "length")
    streamed = post(
        fake,
        "/v1/chat/completions",
        '{"model":"llama3.2","messages":[{"role":"user","content":"x"}],"Stream":true,'
        '"Stream_Optionſ":{"INCLUDE_USAGE":true}}',
    )
    chunks = [json.loads(p) for p in sse_payloads(streamed.text)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    zero = post(
        fake, "/v1/chat/completions", {"model": "llama3.2", "messages": MESSAGES, "max_tokens": 0}
    )
    assert zero.json()["usage"]["completion_tokens"] == 12  # num_predict 0: no limit


def test_show_reads_model_then_name(fake: FakeOllama) -> None:
    for body in ('{"name":"llama3.2"}', '{"model":"","name":"llama3.2"}', '{"NAME":"llama3.2"}'):
        reply = post(fake, "/api/show", body)
        assert reply.status_code == 200, body
        assert reply.json()["details"]["family"] == "llama"
    assert post(fake, "/api/show", '{"model":"nope","name":"llama3.2"}').status_code == 404
    assert post(fake, "/api/show", "{}").json() == {"error": "model is required"}


# --- token accounting ---------------------------------------------------------------------------


def test_uncapped_length_is_configurable_and_counted(fake: FakeOllama) -> None:
    fake.configure(tokens=2000, fast=True)
    with httpx.stream(
        "POST", fake.url + "/api/chat", json={"model": "llama3.2", "messages": MESSAGES}
    ) as response:
        lines = [json.loads(line) for line in response.iter_lines()]
    assert len(lines) == 2001 and lines[-1]["eval_count"] == 2000
    assert all(line.get("message", {}).get("content") for line in lines[:-1])
    view = last_view(fake)
    assert (view["generated"], view["eval_count"], view["outcome"]) == (2000, 2000, "done")
    capped = post(fake, "/v1/completions", {"model": "llama3.2", "prompt": "x", "max_tokens": 7})
    assert capped.json()["usage"]["completion_tokens"] == 7
    assert fake.generated_tokens() == 2007
    assert fake.generated_tokens("/v1/completions") == 7
    totals = fake.token_totals()
    assert totals["eval_count"] == 2007 and totals["requests"] == 2
    assert (
        totals["prompt_eval_count"]
        == lines[-1]["prompt_eval_count"] + capped.json()["usage"]["prompt_tokens"]
    )


def test_cancelled_generation_counts_what_was_generated(fake: FakeOllama) -> None:
    fake.configure(pace_ms=30, tokens=500)
    with httpx.stream(
        "POST", fake.url + "/api/chat", json={"model": "llama3.2", "messages": MESSAGES}
    ) as response:
        lines = response.iter_lines()
        next(lines), next(lines), next(lines)
    fake.wait_cancellations(1)
    fake.wait_idle()
    view = last_view(fake)
    assert view["outcome"] == "cancelled"
    assert 3 <= view["generated"] < 50 and "eval_count" not in view
    assert fake.generated_tokens() == view["generated"]


# --- /v1/messages (Anthropic) -------------------------------------------------------------------


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in (b for b in text.split("\n\n") if b):
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: "), block
        out.append((event[len("event: ") :], json.loads(data[len("data: ") :])))
    return out


def test_anthropic_messages(
    fake: FakeOllama, claude: anthropic.Anthropic, client: ollama.Client
) -> None:
    native = client.chat(model="llama3.2", messages=MESSAGES)
    message = claude.messages.create(model="llama3.2", max_tokens=100, messages=MESSAGES)  # type: ignore[arg-type]
    assert message.id.startswith("msg_") and message.model == "llama3.2"
    assert message.role == "assistant" and message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == native.message.content  # type: ignore[union-attr]
    assert message.usage.input_tokens == native.prompt_eval_count
    assert message.usage.output_tokens == native.eval_count == 12
    capped = claude.messages.create(model="llama3.2", max_tokens=5, messages=MESSAGES)  # type: ignore[arg-type]
    assert (capped.stop_reason, capped.usage.output_tokens) == ("max_tokens", 5)
    view = last_view(fake)
    assert view["options"] == {"num_predict": 5} and view["num_predict"] == 5
    record = fake.requests("/v1/messages")[-1]
    sent = record["headers"]  # x-api-key (older SDKs) or a bearer token (2.x)
    assert sent.get("x-api-key") == "sk-ant-test" or sent["authorization"] == "Bearer sk-ant-test"
    assert record["headers"]["anthropic-version"]
    keyed = httpx.post(
        fake.url + "/v1/messages",
        headers={"x-api-key": "sk-ant-other"},
        json={"model": "llama3.2", "max_tokens": 2, "messages": MESSAGES},
    )
    assert keyed.status_code == 200
    assert fake.requests("/v1/messages")[-1]["headers"]["x-api-key"] == "sk-ant-other"
    thinking = claude.messages.create(
        model="llama3.2",
        max_tokens=50,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert thinking.stop_reason == "end_turn"  # thinking is relaxed for non-thinking models


def test_anthropic_stream(fake: FakeOllama, claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="llama3.2", max_tokens=100, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    whole = claude.messages.create(model="llama3.2", max_tokens=100, messages=MESSAGES)  # type: ignore[arg-type]
    assert text == whole.content[0].text  # type: ignore[union-attr]
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 12)
    assert final.usage.input_tokens == whole.usage.input_tokens
    raw = httpx.post(
        fake.url + "/v1/messages",
        json={"model": "llama3.2", "max_tokens": 3, "stream": True, "messages": MESSAGES},
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert raw.headers["cache-control"] == "no-cache"
    events = sse_events(raw.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    # Ollama's estimate: len("user") + len(SKY) = 24 bytes, / 4
    assert start["usage"] == {"input_tokens": 6, "output_tokens": 0}
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "max_tokens"}
    assert delta["usage"]["output_tokens"] == 3 and delta["usage"]["input_tokens"] > 6
    fake.configure(anthropic_ping=True)
    pinged = httpx.post(
        fake.url + "/v1/messages",
        json={"model": "llama3.2", "max_tokens": 3, "stream": True, "messages": MESSAGES},
    )
    assert [name for name, _ in sse_events(pinged.text)][:2] == ["message_start", "ping"]


def test_anthropic_tools(claude: anthropic.Anthropic) -> None:
    tool = {
        "name": "get_weather",
        "description": "weather",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    message = claude.messages.create(
        model="llama3.2",
        max_tokens=100,
        tools=[tool],
        messages=MESSAGES,  # type: ignore[list-item,arg-type]
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert isinstance(block.input["city"], str)  # type: ignore[index]
    with claude.messages.stream(
        model="llama3.2",
        max_tokens=100,
        tools=[tool],
        messages=MESSAGES,  # type: ignore[list-item,arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == block.input  # type: ignore[union-attr]


def test_anthropic_errors(fake: FakeOllama, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    assert missing.value.body["error"] == {  # type: ignore[index]
        "type": "not_found_error",
        "message": "model 'nope' not found",
    }
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model="llama3.2", max_tokens=0, messages=MESSAGES)  # type: ignore[arg-type]
    assert bad.value.body["error"]["message"] == "max_tokens is required and must be positive"  # type: ignore[index]
    no_max = post(fake, "/v1/messages", {"model": "llama3.2", "messages": MESSAGES})
    assert no_max.status_code == 400
    assert no_max.headers["content-type"] == "application/json; charset=utf-8"
    assert no_max.json()["type"] == "error" and no_max.json()["request_id"].startswith("req_")
    folded = post(
        fake, "/v1/messages", {"model": "llama3.2", "MAX_TOKENS": 2, "messages": MESSAGES}
    )
    assert folded.json()["usage"]["output_tokens"] == 2
    fractional = post(
        fake, "/v1/messages", {"model": "llama3.2", "max_tokens": 2.5, "messages": MESSAGES}
    )
    assert fractional.json()["error"]["message"] == (
        "json: cannot unmarshal number 2.5 into Go struct field MessagesRequest.max_tokens of type int"
    )
    fake.configure(busy_next=1)
    with pytest.raises(anthropic.InternalServerError) as busy:
        claude.messages.create(model="llama3.2", max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    assert busy.value.status_code == 503
    assert busy.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    fake.configure(fault="error_before_first")
    with pytest.raises(anthropic.InternalServerError) as failed:
        claude.messages.create(model="llama3.2", max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    fake.configure(fault="midstream_error", fault_after=2)
    cut = httpx.post(
        fake.url + "/v1/messages",
        json={"model": "llama3.2", "max_tokens": 9, "stream": True, "messages": MESSAGES},
    )
    names = [name for name, _ in sse_events(cut.text)]
    assert cut.status_code == 200 and names[-1] == "content_block_delta"  # no message_stop
    fake.configure(fault=None)
    counted = httpx.post(fake.url + "/v1/messages/count_tokens", json={"model": "llama3.2"})
    assert (counted.status_code, counted.text) == (404, "404 page not found")
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="llama3.2", messages=MESSAGES)  # type: ignore[arg-type]


# --- /v1/responses (OpenAI Responses API) -------------------------------------------------------


def test_responses(fake: FakeOllama, oai: openai.OpenAI, client: ollama.Client) -> None:
    native = client.chat(model="llama3.2", messages=MESSAGES)
    response = oai.responses.create(model="llama3.2", input=SKY)
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.model == "llama3.2"
    assert response.output_text == native.message.content
    assert response.usage is not None
    assert response.usage.input_tokens == native.prompt_eval_count
    assert (response.usage.output_tokens, response.usage.total_tokens) == (
        12,
        12 + (native.prompt_eval_count or 0),
    )
    capped = oai.responses.create(model="llama3.2", input=SKY, max_output_tokens=4)
    assert capped.usage is not None and capped.usage.output_tokens == 4
    assert capped.max_output_tokens == 4
    assert last_view(fake)["options"] == {"temperature": 1.0, "num_predict": 4}
    raw = post(fake, "/v1/responses", {"model": "llama3.2", "input": SKY})
    assert raw.headers["content-type"] == "application/json" and raw.text.endswith("}\n")


def test_responses_stream(fake: FakeOllama, oai: openai.OpenAI) -> None:
    events = list(
        oai.responses.create(model="llama3.2", input=SKY, stream=True, max_output_tokens=5)
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 5
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None and completed.response.usage.output_tokens == 5
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert completed.response.output_text == text
    raw = httpx.post(
        fake.url + "/v1/responses", json={"model": "llama3.2", "input": SKY, "stream": True}
    )
    assert raw.headers["content-type"] == "text/event-stream" and "[DONE]" not in raw.text
    assert raw.text.startswith("event: response.created\ndata: {")
    fake.configure(fault="midstream_error", fault_after=2)
    cut = httpx.post(
        fake.url + "/v1/responses", json={"model": "llama3.2", "input": SKY, "stream": True}
    )
    assert cut.status_code == 200 and "response.completed" not in cut.text
    assert cut.text.count("event: response.output_text.delta") == 2


def test_responses_errors(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.responses.create(model="nope", input=SKY)
    assert missing.value.body == {
        "message": "model 'nope' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as bad:
        oai.responses.create(model="llama3.2", input=[{"type": "nope"}])  # type: ignore[list-item]
    assert bad.value.body["message"] == 'input[0]: unknown input item type: "nope"'  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        oai.responses.create(model="llama3.2", input=SKY, max_output_tokens=0.5)  # type: ignore[arg-type]


# --- faults and load ----------------------------------------------------------------------------


def test_busy_for_the_next_requests(
    fake: FakeOllama, client: ollama.Client, oai: openai.OpenAI
) -> None:
    fake.configure(busy_next=2)
    assert_busy(client, oai, stream=True)
    assert client.chat(model="llama3.2", messages=MESSAGES).done
    assert fake.config()["busy_next"] == 0
    load = fake.load()
    assert (load["rejected"], load["inference_total"]) == (2, 3)
    assert [v["outcome"] for v in fake.decoded()] == ["busy", "busy", "done"]


def _concurrent(fake: FakeOllama, count: int) -> list[httpx.Response]:
    import concurrent.futures

    body = {"model": "llama3.2", "messages": MESSAGES, "stream": False}
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(httpx.post, fake.url + "/api/chat", json=body, timeout=30)
            for _ in range(count)
        ]
        return [f.result() for f in futures]


def test_in_flight_and_peak(fake: FakeOllama) -> None:
    fake.configure(pace_ms=100, tokens=5)
    replies = _concurrent(fake, 3)
    assert [r.status_code for r in replies] == [200, 200, 200]
    load = fake.wait_idle()
    assert (load["in_flight"], load["inference_peak"], load["peak_running"]) == (0, 3, 3)
    fake.reset()
    assert fake.load()["inference_peak"] == 0


def test_parallel_slots_and_queue(fake: FakeOllama) -> None:
    fake.configure(pace_ms=40, tokens=5, parallel=1, max_queue=5)
    started = time.monotonic()
    replies = _concurrent(fake, 3)
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert time.monotonic() - started >= 3 * 4 * 0.04  # one at a time
    load = fake.wait_idle()
    assert (load["peak_running"], load["peak_queued"], load["rejected"]) == (1, 2, 0)
    fake.reset()
    fake.configure(pace_ms=100, tokens=5, parallel=1, max_queue=0)
    statuses = sorted(r.status_code for r in _concurrent(fake, 2))
    assert statuses == [200, 503]
    assert fake.load()["peak_running"] == 1 and fake.load()["rejected"] == 1


# --- pull from a configurable registry ----------------------------------------------------------


def test_pull_from_registry(fake: FakeOllama, client: ollama.Client) -> None:
    fake.configure(registry=["mistral:7b"])
    assert "mistral:7b" not in {m.model for m in client.list().models}
    progress = list(client.pull("mistral:7b", stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = [p for p in progress if (p.status or "").startswith("pulling ") and p.digest]
    assert layers and all(p.digest and p.digest.startswith("sha256:") and p.total for p in layers)
    assert all(p.status == f"pulling {p.digest[7:19]}" for p in layers if p.digest)
    assert layers[-1].completed == layers[-1].total
    assert "mistral:7b" in {m.model for m in client.list().models}
    assert client.chat(model="mistral:7b", messages=MESSAGES).done
    raw = httpx.post(fake.url + "/api/pull", json={"model": "qwen3:8b"})  # not in the registry
    assert ndjson(raw) == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    assert raw.status_code == 200
    blocked = httpx.post(fake.url + "/api/pull", json={"model": "qwen3:8b", "stream": False})
    assert blocked.status_code == 500
