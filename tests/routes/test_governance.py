"""Nobody talks past the gateway: one reading of every body, as the Go-decoding fake reads it.

Through a real `serve --workers 2`; the fake Ollama decodes bodies as Go does, and records what
it ran (`decoded`) and what it generated, so each test checks the backend's side.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import cli, create_key
from tests.routes.conftest import Stack

CHAT = [{"role": "user", "content": "Why is the sky blue?"}]
GENERATING = ("/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions")


def _body(path: str, model_fields: str) -> bytes:
    """A body for `path` whose model is given by the raw JSON fragment `model_fields`."""
    rest = {
        "/api/chat": '"messages":[{"role":"user","content":"hi"}],"stream":false',
        "/api/generate": '"prompt":"hi","stream":false',
        "/api/embed": '"input":"hi"',
        "/v1/chat/completions": '"messages":[{"role":"user","content":"hi"}]',
        "/v1/completions": '"prompt":"hi"',
        "/v1/embeddings": '"input":"hi"',
        "/v1/messages": '"messages":[{"role":"user","content":"hi"}]',
        "/v1/responses": '"input":"hi"',
    }[path]
    return ("{" + model_fields + "," + rest + "}").encode()


def _post(stack: Stack, path: str, raw: bytes, key: str | None = None) -> httpx.Response:
    headers = {**stack.auth(key), "content-type": "application/json"}
    return httpx.post(stack.url + path, content=raw, headers=headers, timeout=30)


def _ran(fake: FakeOllama) -> set[str]:
    return {d["model"] for d in fake.decoded() if d.get("model")}


@pytest.mark.parametrize(
    "fields",
    [
        '"model":"llama3.2","Model":"qwen3:8b"',
        '"model":"llama3.2","model":"qwen3:8b"',
        '"model":"llama3.2","mod\\u0065l":"qwen3:8b"',
        '"model":"llama3.2","MODEL":"nomic-embed-text"',
        '"Model":"qwen3:8b"',
        '"MODEL":"qwen3:8b"',
        '"mod\\u0065l":"qwen3:8b"',
    ],
)
def test_a_model_limited_key_never_gets_another_model(
    stack: Stack, fake: FakeOllama, fields: str
) -> None:
    paths = [*GENERATING, "/api/embed", "/v1/embeddings"]
    for path in paths:
        answer = _post(stack, path, _body(path, fields), stack.limited_key)
        assert answer.status_code in (400, 403), (path, answer.status_code, answer.text)
    assert _ran(fake) == set()


def test_a_single_spelling_is_read_and_audited_as_the_backend_runs_it(
    stack: Stack, fake: FakeOllama
) -> None:
    answer = _post(stack, "/api/chat", _body("/api/chat", '"MODEL":"llama3.2"'), stack.limited_key)
    assert answer.status_code == 200 and answer.json()["model"] == "llama3.2"
    assert _ran(fake) == {"llama3.2"}


def test_show_and_model_lookups_are_limited_too(stack: Stack, fake: FakeOllama) -> None:
    auth = stack.auth(stack.limited_key)
    for body in ({"name": "qwen3:8b"}, {"model": "", "name": "qwen3:8b"}, {"Model": "qwen3:8b"}):
        r = httpx.post(stack.url + "/api/show", json=body, headers=auth)
        assert r.status_code == 403, (body, r.text)
    assert httpx.post(stack.url + "/api/show", json={"name": "llama3.2"}, headers=auth).is_success
    assert httpx.get(stack.url + "/v1/models/qwen3:8b", headers=auth).status_code == 403
    listed = httpx.get(stack.url + "/v1/models", headers=auth).json()["data"]
    assert {m["id"] for m in listed} <= {"llama3.2:latest", "all-minilm:latest"}
    assert [r["decoded"]["model"] for r in fake.requests("/api/show") if "decoded" in r] == [
        "llama3.2"
    ]


def _budget_key(stack: Stack, budget: int) -> str:
    tenant = f"b{uuid.uuid4().hex[:8]}"
    cli(stack.env, "create-tenant", "--name", tenant, "--daily-tokens", str(budget))
    return create_key(stack.env, tenant, "k")


NATIVE_CAPS = [
    '"Options":{"num_predict":-1}',
    '"OPTIONS":{"num_predict":100000}',
    '"option\u017f":{"num_predict":100000}',
    '"options":{"num_predict":0}',
    '"options":{"num_predict":-2}',
    '"options":{"num_predict":null}',
    '"options":{"num_predict":1e12}',
    '"options":{"NUM_PREDICT":5}',
    '"options":null',
]
OPENAI_CAPS = [
    '"MAX_TOKENS":100000',
    '"Max_Tokens":100000',
    '"max_tokens":0',
    '"max_tokens":-5',
    '"max_tokens":null',
    '"max_tokens":1e15',
    '"max_completion_tokens":100000',
    '"stream":true,"Stream_Options":{"include_usage":false}',
    '"stream":true,"stream_options":{"INCLUDE_USAGE":false}',
]


ANTHROPIC_CAPS = [
    '"max_tokens":100000',
    '"max_tokens":100000,"stream":true',
    '"max_tokens":1e12',
]
RESPONSES_CAPS = [
    '"max_output_tokens":100000',
    '"max_output_tokens":0',
    '"max_output_tokens":null',
    '"max_output_tokens":-1,"stream":true',
    '"stream":true',
]


@pytest.mark.parametrize(
    "path, cap",
    [("/api/chat", c) for c in NATIVE_CAPS]
    + [("/v1/chat/completions", c) for c in OPENAI_CAPS]
    + [("/v1/messages", c) for c in ANTHROPIC_CAPS]
    + [("/v1/responses", c) for c in RESPONSES_CAPS],
)
def test_a_budget_is_never_exceeded_however_the_cap_is_spelled(
    stack: Stack, fake: FakeOllama, path: str, cap: str
) -> None:
    fake.configure(tokens=5000, fast=True)
    key = _budget_key(stack, 400)
    raw = _body(path, '"model":"llama3.2",' + cap)
    statuses = [_post(stack, path, raw, key).status_code for _ in range(3)]
    assert statuses[0] == 200 and set(statuses) <= {200, 429}, statuses
    totals = fake.token_totals()
    assert totals["generated"] + totals["prompt_eval_count"] <= 400 + 5, totals
    usage = httpx.get(stack.url + "/v1/usage", headers=stack.auth(key)).json()
    assert usage["usage"]["key"]["day"] <= 400 + 5


LONG = "word " * 4000  # 20,000 characters: about 5,000 prompt tokens
PROMPT_SPELLINGS = [
    ("/api/generate", {"PROMPT": LONG, "stream": False}),
    ("/api/generate", {"Prompt": LONG, "SYSTEM": LONG, "stream": False}),
    ("/api/chat", {"Messages": [{"role": "user", "content": LONG}], "stream": False}),
    ("/api/chat", {"messages": [{"role": "user", "CONTENT": LONG}], "stream": False}),
    ("/v1/chat/completions", {"MESSAGES": [{"role": "user", "content": LONG}]}),
    ("/v1/completions", {"Prompt": LONG}),
    ("/v1/responses", {"INPUT": LONG}),
    (
        "/v1/responses",
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": LONG}]}]},
    ),
    ("/v1/messages", {"MESSAGES": [{"role": "user", "content": LONG}], "max_tokens": 5}),
    ("/api/embed", {"INPUT": LONG}),
]


@pytest.mark.parametrize("path, fields", PROMPT_SPELLINGS)
def test_no_spelling_of_the_prompt_escapes_the_reservation(
    stack: Stack, fake: FakeOllama, path: str, fields: dict[str, Any]
) -> None:
    key = _budget_key(stack, 1000)
    answer = httpx.post(
        stack.url + path, json={"model": "llama3.2", **fields}, headers=stack.auth(key), timeout=30
    )
    assert answer.status_code == 429, (answer.status_code, answer.text)
    assert fake.decoded() == []
    usage = httpx.get(stack.url + "/v1/usage", headers=stack.auth(key)).json()
    assert usage["usage"]["key"]["day"] == 0


@pytest.mark.parametrize("cap", ['"options":{"num_predict":0.5}', '"options":{"num_predict":"9"}'])
def test_a_cap_that_is_not_a_whole_number_is_refused(
    stack: Stack, fake: FakeOllama, cap: str
) -> None:
    answer = _post(stack, "/api/chat", _body("/api/chat", '"model":"llama3.2",' + cap))
    assert answer.status_code == 400 and "num_predict" in answer.json()["error"]
    bad = _body("/v1/chat/completions", '"model":"llama3.2","max_tokens":0.5')
    v1 = _post(stack, "/v1/chat/completions", bad)
    assert v1.status_code == 400 and v1.json()["error"]["type"] == "invalid_request_error"
    assert fake.decoded() == []


def test_hardware_options_are_dropped_and_keep_alive_capped(stack: Stack, fake: FakeOllama) -> None:
    body = {
        "model": "llama3.2",
        "messages": CHAT,
        "stream": False,
        "keep_alive": -1,
        "options": {
            "num_gpu": 99,
            "main_gpu": 1,
            "num_thread": 2,
            "use_mmap": False,
            "low_vram": True,
            "numa": True,
            "temperature": 0.5,
        },
    }
    assert httpx.post(stack.url + "/api/chat", json=body, headers=stack.auth()).is_success
    (decoded,) = fake.decoded("/api/chat")
    hardware = {"num_gpu", "main_gpu", "num_thread", "use_mmap", "low_vram", "numa"}
    assert not hardware & set(decoded["options"]) and decoded["options"]["temperature"] == 0.5
    assert decoded["keep_alive_ns"] == 30 * 60 * 10**9


def _rpm_key(stack: Stack, *flags: str) -> str:
    tenant = f"r{uuid.uuid4().hex[:8]}"
    cli(stack.env, "create-tenant", "--name", tenant)
    return create_key(stack.env, tenant, "k", *flags)


def test_a_reused_request_id_never_stretches_the_rpm(stack: Stack, fake: FakeOllama) -> None:
    key = _rpm_key(stack, "--rpm", "10")
    headers = {**stack.auth(key), "x-request-id": "same-id-1"}
    body = {"model": "llama3.2", "prompt": "hi", "stream": False}
    statuses = [
        httpx.post(stack.url + "/api/generate", json=body, headers=headers).status_code
        for _ in range(30)
    ]
    assert statuses.count(200) == 10 and statuses.count(429) == 20


def test_a_reused_request_id_never_stretches_the_concurrency(
    stack: Stack, fake: FakeOllama
) -> None:
    fake.configure(tokens=20, pace_ms=50)
    key = _rpm_key(stack, "--max-concurrent", "2")
    headers = {**stack.auth(key), "x-request-id": "same-id-2"}
    body = {"model": "llama3.2", "messages": CHAT}

    async def one(client: httpx.AsyncClient) -> int:
        async with client.stream("POST", "/api/chat", json=body, headers=headers) as r:
            await r.aread()
            return r.status_code

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            return await asyncio.gather(*(one(client) for _ in range(8)))

    statuses = asyncio.run(run())
    assert statuses.count(200) >= 2 and fake.load()["inference_peak"] <= 2, statuses


def test_a_reused_request_id_is_charged_every_time(stack: Stack, fake: FakeOllama) -> None:
    key = _budget_key(stack, 100_000)
    headers = {**stack.auth(key), "x-request-id": "same-id-3"}
    body = {"model": "llama3.2", "prompt": "hi", "stream": False}
    for _ in range(5):
        assert httpx.post(stack.url + "/api/generate", json=body, headers=headers).is_success
    totals = fake.token_totals()
    usage = httpx.get(stack.url + "/v1/usage", headers=stack.auth(key)).json()
    assert usage["usage"]["key"]["day"] == totals["prompt_eval_count"] + totals["eval_count"]


def test_metadata_calls_count_against_requests_per_minute(stack: Stack) -> None:
    key = _rpm_key(stack, "--rpm", "3")
    auth = stack.auth(key)
    for _ in range(3):
        assert httpx.get(stack.url + "/api/tags", headers=auth).status_code == 200
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/api/tags", None),
        ("GET", "/api/ps", None),
        ("GET", "/api/version", None),
        ("POST", "/api/show", {"model": "llama3.2"}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/llama3.2", None),
        ("GET", "/v1/usage", None),
        ("GET", "/api/usage", None),
    ]
    for method, path, body in calls:
        r = httpx.request(method, stack.url + path, json=body, headers=auth)
        assert r.status_code == 429 and r.headers["x-gateway-limit"] == "key:requests", path


def test_bad_input_gets_a_4xx_in_the_surface_shape_within_a_second(stack: Stack) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    bodies = [
        deep,
        b'{"model":"llama3.2","messages":' + deep + b"}",
        b'{"model":"llama3.2","options":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
        b'{"model":"llama3.2","prompt":"x","n":1e999}',
        b'{"model":"llama3.2","prompt":"x","n":-1e999}',
        b'{"model":"llama3.2","prompt":"x","n":NaN}',
        b'{"model":"llama3.2","prompt":"x","n":Infinity}',
        b'{"model":"\\ud800","prompt":"x"}',
        b'{"model":"llama3.2","prompt":"\\udfff"}',
        b'{"model":"llama3.2","prompt":"\xff\xfe"}',
        b"[1,2]",
        b'"a string"',
        b"null",
        b'{"model":5}',
        b'{"model":["llama3.2"]}',
    ]
    native = [
        b'{"model":"llama3.2","stream":"yes"}',
        b'{"model":"llama3.2","options":"fast"}',
        b'{"model":"llama3.2","options":{"num_predict":"10"}}',
        b'{"model":"llama3.2","keep_alive":true}',
    ]
    openai = [
        b'{"model":"llama3.2","stream":"yes"}',
        b'{"model":"llama3.2","max_tokens":"10"}',
        b'{"model":"llama3.2","max_tokens":0.5}',
        b'{"model":"llama3.2","stream_options":[]}',
    ]
    cases = {
        "/api/chat": bodies + native,
        "/api/generate": bodies + native,
        "/api/embed": bodies + native[1:],
        "/v1/chat/completions": bodies + openai,
        "/v1/completions": bodies + openai,
        "/v1/embeddings": bodies,
    }
    with httpx.Client(base_url=stack.url, headers=stack.auth(), timeout=5) as client:
        for path, raws in cases.items():
            for raw in raws:
                r = client.post(path, content=raw, headers={"content-type": "application/json"})
                assert 400 <= r.status_code < 500, (path, raw[:40], r.status_code, r.text[:200])
                assert r.elapsed.total_seconds() < 1.0
                error = r.json()["error"]
                assert isinstance(error, dict if path.startswith("/v1") else str)
        assert client.get("/").status_code == 200  # still serving


@pytest.mark.parametrize(
    "payload",
    [
        bytes.fromhex("160301020001000200030368") + b"\x00" * 64,  # a TLS ClientHello
        b"\x00" * 256,
        b"G@T /api/tags HTTP/1.1\r\nhost: x\r\n\r\n",
        b"GET\x01 / HTTP/1.1\r\n\r\n",
    ],
)
def test_bytes_that_are_not_http_are_refused_at_once(stack: Stack, payload: bytes) -> None:
    async def send() -> bytes:
        host, port = stack.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(payload)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=1.0)  # and closed
        writer.close()
        return answer

    assert asyncio.run(send()).startswith(b"HTTP/1.1 400")
    assert httpx.get(stack.url + "/").status_code == 200


def test_a_keyless_request_is_refused_before_its_body(stack: Stack) -> None:
    async def send(length: int) -> bytes:
        host, port = stack.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {length}\r\n\r\n{{".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=1.0)
        writer.close()
        return head

    assert asyncio.run(send(9_000_000)).startswith(b"HTTP/1.1 401")  # the body never came
    assert asyncio.run(send(50 * 1024 * 1024)).split(b" ")[1] in (b"401", b"413")


def test_a_clients_request_id_is_only_a_correlation_id(stack: Stack, fake: FakeOllama) -> None:
    headers = {**stack.auth(), "x-request-id": "my-id-77"}
    body = {"model": "llama3.2", "prompt": "hi", "stream": False}
    r = httpx.post(stack.url + "/api/generate", json=body, headers=headers)
    assert r.headers["x-request-id"] == "my-id-77"
    assert r.headers["x-gateway-request-id"] not in ("", "my-id-77")
    sent = fake.requests("/api/generate")[-1]
    assert json.loads(json.dumps(sent["headers"])).get("x-request-id") == "my-id-77"
