"""Claude Code's and Codex's surfaces through `serve --workers 2`: the official `anthropic` client
on /v1/messages and the `openai` client's Responses API get what they get from Ollama itself.

Each surface is called with the key in `x-api-key` (what Claude Code sends with
ANTHROPIC_API_KEY) and as `Authorization: Bearer` (ANTHROPIC_AUTH_TOKEN, Codex's env_key). The
anthropic SDK 2.x sends `api_key=` as a Bearer token too, so the x-api-key case sets the header
itself.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import cli, create_key
from tests.routes.compare import scrub
from tests.routes.conftest import BACKEND_TOKEN, Stack, relayed

MESSAGES: Any = [{"role": "user", "content": "Why is the sky blue?"}]
PROMPT = "Why is the sky blue?"
BUDGET = 100_000
DIRECT = "sk-direct"  # the key the clients send to the fake itself
HEADERS = ("x-api-key", "authorization")
CASES = [(surface, header) for surface in ("messages", "responses") for header in HEADERS]
PATH = {"messages": "/v1/messages", "responses": "/v1/responses"}
NON_STREAM_CAP = 4096  # NON_STREAM_OUTPUT_CAP: a budgeted key's uncapped non-streamed request
VOLATILE = frozenset({"completed_at", "item_id"})  # Responses timestamps and message ids


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The SDKs use only the credentials a test gives them (no env key, no profile on disk)."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))


@pytest.fixture
def budget_key(stack: Stack) -> str:
    """A fresh key of the unlimited tenant with a daily budget of its own."""
    return create_key(
        stack.env, "acme", f"agent-{uuid.uuid4().hex[:6]}", "--daily-tokens", str(BUDGET)
    )


def claude(url: str, key: str, header: str) -> anthropic.Anthropic:
    """The anthropic client with the key only in x-api-key, or as a Bearer token (auth_token)."""
    if header == "x-api-key":  # api_key= would be sent as Bearer by the 2.x SDK: drop that
        only = {"x-api-key": key, "Authorization": anthropic.Omit()}
        return anthropic.Anthropic(base_url=url, api_key=key, default_headers=only, max_retries=0)  # type: ignore[arg-type]
    return anthropic.Anthropic(base_url=url, auth_token=key, max_retries=0)


def codex(url: str, key: str, header: str) -> tuple[openai.OpenAI, dict[str, Any]]:
    """The openai client and the per-call headers: the key as Bearer, or only in x-api-key."""
    if header == "x-api-key":
        client = openai.OpenAI(
            base_url=url + "/v1",
            api_key="unused",
            default_headers={"x-api-key": key},
            max_retries=0,
        )
        return client, {"Authorization": openai.Omit()}  # the SDK sends no Authorization then
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0), {}


def ask(
    surface: str, header: str, url: str, key: str, *, stream: bool, model: str = "llama3.2"
) -> Any:
    """One create(); a stream is read to its end and returned as its list of events."""
    answer: Any
    if surface == "messages":
        answer = claude(url, key, header).messages.create(
            model=model, max_tokens=100, messages=MESSAGES, stream=stream
        )
    else:
        client, extra = codex(url, key, header)
        answer = client.responses.create(
            model=model, input=PROMPT, stream=stream, extra_headers=extra
        )
    return list(answer) if stream else answer


def summary(surface: str, answer: Any) -> tuple[str, str | None, int, int]:
    """(text, stop reason or status, prompt tokens, completion tokens) of an answer or stream."""
    if surface == "messages" and isinstance(answer, list):
        text = "".join(e.delta.text for e in answer if e.type == "content_block_delta")
        (end,) = [e for e in answer if e.type == "message_delta"]  # Ollama's metered figure
        return text, end.delta.stop_reason, end.usage.input_tokens or 0, end.usage.output_tokens
    if surface == "messages":
        usage = answer.usage
        return answer.content[0].text, answer.stop_reason, usage.input_tokens, usage.output_tokens
    if isinstance(answer, list):
        text = "".join(e.delta for e in answer if e.type == "response.output_text.delta")
        assert answer[-1].type == "response.completed"
        answer = answer[-1].response
        assert answer.output_text == text
    usage = answer.usage
    return answer.output_text, answer.status, usage.input_tokens, usage.output_tokens


def echoed_cap(answer: Any) -> int | None:
    """The max_output_tokens a Responses answer echoes (the same in every event of a stream)."""
    if isinstance(answer, list):
        (cap,) = {e.response.max_output_tokens for e in answer if hasattr(e, "response")}
        return cap  # type: ignore[no-any-return]
    return answer.max_output_tokens  # type: ignore[no-any-return]


def comparable(value: Any, ignored: frozenset[str] = frozenset()) -> Any:
    """The answer without ids, timestamps, durations and the `ignored` fields."""
    scrubbed = scrub(value)
    if isinstance(scrubbed, dict):
        return {
            k: comparable(v, ignored)
            for k, v in scrubbed.items()
            if k not in VOLATILE and k not in ignored
        }
    if isinstance(scrubbed, list):
        return [comparable(v, ignored) for v in scrubbed]
    return scrubbed


def auth(key: str, header: str) -> dict[str, str]:
    """The key as the given header."""
    return {"x-api-key": key} if header == "x-api-key" else {"Authorization": f"Bearer {key}"}


def ledger(stack: Stack, key: str, header: str, requests: int) -> dict[str, Any]:
    """The key's /v1/usage once the ledger holds `requests` requests (it is written in batches)."""
    deadline = time.monotonic() + 10
    while True:
        report = httpx.get(stack.url + "/v1/usage?by=day", headers=auth(key, header)).json()
        if report["breakdown"]["total"]["requests"] >= requests:
            return dict(report)
        assert time.monotonic() < deadline, report
        time.sleep(0.2)


def is_direct(record: dict[str, Any]) -> bool:
    """Whether the fake got this request from a client directly, not from the gateway."""
    return DIRECT in json.dumps(record["headers"])


def assert_no_client_key_upstream(fake: FakeOllama, path: str, key: str) -> list[dict[str, Any]]:
    """What the gateway relayed to the fake: its own backend token, never the client's key."""
    sent = [r for r in relayed(fake, path) if not is_direct(r)]
    for record in sent:
        assert record["headers"]["authorization"] == f"Bearer {BACKEND_TOKEN}"
        assert "x-api-key" not in record["headers"]
        assert key not in json.dumps(record) and key[:11] not in json.dumps(record["headers"])
    return sent


@pytest.mark.parametrize(("surface", "header"), CASES)
def test_same_answer_as_ollama_and_charged_to_the_key(
    stack: Stack, fake: FakeOllama, budget_key: str, surface: str, header: str
) -> None:
    prompt = completion = 0
    for stream in (False, True):
        through = ask(surface, header, stack.url, budget_key, stream=stream)
        direct = ask(surface, header, stack.fake.url, DIRECT, stream=stream)
        ignored: frozenset[str] = frozenset()
        if surface == "responses":  # Ollama echoes the cap the gateway set for a budgeted key
            cap = echoed_cap(through)
            assert echoed_cap(direct) is None and cap is not None
            assert (0 < cap <= BUDGET) if stream else (cap == NON_STREAM_CAP)
            ignored = frozenset({"max_output_tokens"})
        assert comparable(through, ignored) == comparable(direct, ignored)
        text, stop, used_prompt, used_completion = summary(surface, through)
        assert (text, stop, used_prompt, used_completion) == summary(surface, direct)
        assert text and stop in ("end_turn", "completed") and used_completion == 12
        prompt, completion = prompt + used_prompt, completion + used_completion
    direct_headers = [r["headers"] for r in fake.requests(PATH[surface]) if is_direct(r)]
    assert len(direct_headers) == 2
    for h in direct_headers:  # the SDK sent the key the way this case means
        assert (h.get("x-api-key") == DIRECT) == (header == "x-api-key")
        assert ("authorization" in h) == (header == "authorization")
    assert len(assert_no_client_key_upstream(fake, PATH[surface], budget_key)) == 2

    tokens = prompt + completion
    report = ledger(stack, budget_key, header, 2)
    assert report["usage"]["key"]["day"] == tokens
    assert report["limits"]["key"]["daily_tokens"] == BUDGET
    assert report["breakdown"]["total"] == {
        "requests": 2,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": tokens,
    }
    shown = json.loads(cli(stack.env, "usage", "--prefix", budget_key[:11], "--json").stdout)
    assert shown["day"] == {
        "requests": 2,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": tokens,
        "budget": BUDGET,
        "remaining": BUDGET - tokens,
    }


@pytest.mark.parametrize(("surface", "header"), CASES)
def test_a_model_limited_key_is_refused_in_the_surfaces_shape(
    stack: Stack, fake: FakeOllama, surface: str, header: str
) -> None:
    message = "model 'qwen3:8b' is not allowed for this API key"
    for stream in (False, True):
        if surface == "messages":
            with pytest.raises(anthropic.PermissionDeniedError) as refused:
                ask(surface, header, stack.url, stack.limited_key, stream=stream, model="qwen3:8b")
            assert refused.value.response.json() == {
                "type": "error",
                "error": {"type": "permission_error", "message": message},
            }
        else:
            with pytest.raises(openai.PermissionDeniedError) as denied:
                ask(surface, header, stack.url, stack.limited_key, stream=stream, model="qwen3:8b")
            error = denied.value.response.json()["error"]
            assert error == {**error, "message": message, "code": "forbidden", "param": None}
            assert denied.value.code == "forbidden"
    assert relayed(fake, PATH[surface]) == []


def test_two_different_keys_are_refused_and_one_key_twice_is_not(
    stack: Stack, fake: FakeOllama
) -> None:
    key, other = stack.key, stack.limited_key
    both = anthropic.Anthropic(
        base_url=stack.url, auth_token=key, default_headers={"x-api-key": other}, max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError) as refused:
        both.messages.create(model="llama3.2", max_tokens=5, messages=MESSAGES)
    assert refused.value.response.json()["type"] == "error"
    assert refused.value.response.json()["error"]["type"] == "authentication_error"
    oai = openai.OpenAI(
        base_url=stack.url + "/v1", api_key=key, default_headers={"x-api-key": other}, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        oai.responses.create(model="llama3.2", input=PROMPT)
    assert unauthorized.value.code == "invalid_api_key"
    assert relayed(fake) == []
    same = anthropic.Anthropic(
        base_url=stack.url, auth_token=key, default_headers={"x-api-key": key}, max_retries=0
    )
    assert same.messages.create(model="llama3.2", max_tokens=5, messages=MESSAGES).content
    twice = openai.OpenAI(
        base_url=stack.url + "/v1", api_key=key, default_headers={"x-api-key": key}, max_retries=0
    )
    assert twice.responses.create(model="llama3.2", input=PROMPT).output_text
    for path in PATH.values():
        assert len(assert_no_client_key_upstream(fake, path, key)) == 1


@pytest.mark.parametrize("header", HEADERS)
def test_messages_need_a_positive_max_tokens(stack: Stack, fake: FakeOllama, header: str) -> None:
    gateway, direct = claude(stack.url, stack.key, header), claude(stack.fake.url, DIRECT, header)
    expected = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens is required and must be positive",
        },
    }
    for max_tokens, stream in ((0, False), (-1, False), (0, True)):
        for client in (gateway, direct):
            with pytest.raises(anthropic.BadRequestError) as refused:
                client.messages.create(
                    model="llama3.2", max_tokens=max_tokens, messages=MESSAGES, stream=stream
                )
            answer = refused.value.response.json()
            assert {k: answer[k] for k in ("type", "error")} == expected
    body = {"model": "llama3.2", "messages": MESSAGES}
    missing = httpx.post(stack.url + "/v1/messages", json=body, headers=auth(stack.key, header))
    assert missing.status_code == 400 and missing.json() == expected
    ollama = httpx.post(stack.fake.url + "/v1/messages", json=body, headers=auth(DIRECT, header))
    assert ollama.status_code == 400 and ollama.json()["error"] == expected["error"]
    assert assert_no_client_key_upstream(fake, "/v1/messages", stack.key) == []  # refused here


def test_count_tokens_is_not_served(stack: Stack, fake: FakeOllama) -> None:
    for header in HEADERS:
        client = claude(stack.url, stack.key, header)
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.count_tokens(model="llama3.2", messages=MESSAGES)
        answer = missing.value.response.json()
        assert answer["type"] == "error" and answer["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):  # Ollama has no such route either
        claude(stack.fake.url, DIRECT, "x-api-key").messages.count_tokens(
            model="llama3.2", messages=MESSAGES
        )
    assert assert_no_client_key_upstream(fake, "/v1/messages/count_tokens", stack.key) == []


def test_a_stream_the_budget_cuts_in_its_text_block_stops_that_block(
    stack: Stack, fake: FakeOllama
) -> None:
    """Two thinking streams (block 0 thinking, block 1 text) share a budget that holds one and
    a half: one is reserved its first 512 tokens and then refused more, so the gateway cuts it
    in its text block, and must stop block 1 (it stopped block 0 a second time)."""
    fake.configure(tokens=600, pace_ms=2)  # 300 thinking tokens, then 300 of text
    key = create_key(stack.env, "acme", f"cut-{uuid.uuid4().hex[:6]}", "--daily-tokens", "1000")

    def stream(_: int) -> list[Any]:
        return list(
            claude(stack.url, key, "x-api-key").messages.create(
                model="qwen3:8b",
                max_tokens=100_000,
                thinking={"type": "enabled", "budget_tokens": 1024},
                messages=MESSAGES,
                stream=True,
            )
        )

    with ThreadPoolExecutor(2) as pool:
        streams = list(pool.map(stream, range(2)))
    for events in streams:
        open_block: int | None = None
        for event in events:  # every block started once, stopped once, in order
            if event.type == "content_block_start":
                assert open_block is None
                open_block = event.index
            elif event.type == "content_block_stop":
                assert open_block == event.index, [e.type for e in events[-4:]]
                open_block = None
        assert open_block is None
        assert [e.type for e in events[-2:]] == ["message_delta", "message_stop"]
        assert events[-2].delta.stop_reason == "max_tokens"
        starts = [e.content_block.type for e in events if e.type == "content_block_start"]
        assert starts == ["thinking", "text"]
    assert sorted(d["outcome"] for d in fake.decoded("/v1/messages")) == ["cancelled", "done"]
    totals = fake.token_totals()
    assert totals["generated"] + totals["prompt_eval_count"] <= 1000 + 5, totals
