"""Request parsing, output caps and upstream headers."""

from __future__ import annotations

import json

import httpx
import pytest

from config import Backend
from server.errors import BadRequest
from server.relay.body import Kind, parse, upstream_body
from server.relay.upstream import request_headers, response_headers


@pytest.mark.parametrize(
    "raw", [b"", b"  ", b"{x", b"[1]", b"{}", b'{"model": ""}', b'{"model": 3}', b"null", b'"x"']
)
def test_bad_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(raw, Kind.NATIVE_GENERATE)


def test_fields_and_defaults() -> None:
    chat = parse(
        b'{"model":"m","messages":[{"role":"user","content":"abcd"}]}', Kind.NATIVE_GENERATE
    )
    assert (chat.model, chat.stream, chat.max_output) == ("m", True, None)
    assert chat.prompt_tokens > 1
    v1 = parse(b'{"model":"m","max_tokens":9,"stream":true}', Kind.OPENAI_GENERATE)
    assert (v1.stream, v1.max_output, v1.include_usage) == (True, 9, False)
    show = parse(b'{"name":"m"}', Kind.LOOKUP)
    assert show.model == "m"


def test_the_forwarded_body_is_written_from_the_reading() -> None:
    raw = b'{"model": "m", "prompt": "x", "stream": false, "Other": [1, 2]}'
    reading = parse(raw, Kind.NATIVE_GENERATE)
    assert upstream_body(reading, raw, None) is raw  # nothing to change: the client's bytes
    assert json.loads(upstream_body(reading, raw, None)) == {
        "model": "m",
        "prompt": "x",
        "stream": False,
        "Other": [1, 2],
    }
    capped = json.loads(upstream_body(reading, raw, 50))
    assert capped["options"] == {"num_predict": 50}
    raw = b'{"model":"m","stream":true,"max_completion_tokens":900}'
    body = json.loads(upstream_body(parse(raw, Kind.OPENAI_GENERATE), raw, 10))
    assert body["max_tokens"] == 10 and "max_completion_tokens" not in body
    assert body["stream_options"] == {"include_usage": True}


def test_request_headers_drop_credentials_and_hop_by_hop() -> None:
    incoming = {
        "Authorization": "Bearer nz_secret",
        "Host": "gw",
        "Connection": "x-foo",
        "X-Foo": "1",
        "Keep-Alive": "5",
        "User-Agent": "ua",
        "Content-Length": "3",
        "X-Api-Key": "k",
        "Accept-Encoding": "gzip",
    }
    out = request_headers(incoming, Backend("b", "http://10.0.0.2:11434", "tok"))
    assert out == {
        "user-agent": "ua",
        "host": "10.0.0.2:11434",
        "accept-encoding": "identity",
        "authorization": "Bearer tok",
    }
    assert "authorization" not in request_headers(incoming, Backend("b", "http://h"))


def test_response_headers_keep_content_type() -> None:
    upstream = httpx.Headers(
        {
            "Content-Type": "application/x-ndjson",
            "Transfer-Encoding": "chunked",
            "Content-Length": "5",
            "Date": "x",
            "X-Other": "y",
            "X-Gateway-Limit": "key:requests",  # another gateway's (or a proxy's) answer
            "X-Should-Retry": "false",
            "X-RateLimit-Remaining-Tokens": "0",
            "X-Request-Id": "upstream-id",
        }
    )
    assert response_headers(upstream) == {"content-type": "application/x-ndjson", "x-other": "y"}


def test_field_names_fold_exactly_as_go_folds_them() -> None:
    """For every rune: it names an ASCII letter's field iff Go's foldName says so."""
    from server.relay.gofields import fold
    from tests.fake_ollama.gofold import fold_name

    for code in range(0x80, 0x1EA00):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        go = fold_name(char)
        ours = fold(char)
        assert (go.isascii(), go if go.isascii() else "") == (
            ours.isascii(),
            ours if ours.isascii() else "",
        ), hex(code)


def test_a_dotless_i_names_no_field() -> None:
    raw = b'{"model":"llama3.2","keep_al\xc4\xb1ve":"-1","stream":false,"prompt":"hi"}'
    reading = parse(raw, Kind.NATIVE_GENERATE)
    assert "keep_alive" not in reading.forward  # Go ignores the key too: no field is named


@pytest.mark.parametrize("padding", [0, 70_000, 2_000_000])
def test_a_governed_key_twice_is_refused_whatever_the_body_size(padding: int) -> None:
    text = json.dumps("caf\u00e9 " * (padding // 6))  # escapes in values are no keys
    for fields in (
        '"model":"llama3.2","model":"qwen3:8b"',
        '"model":"llama3.2","mod\\u0065l":"qwen3:8b"',
        '"model":"llama3.2","options":{"num_ctx":2048,"num_ctx":999999}',
        '"model":"llama3.2","options":{"num_predict":5,"num_predict":-1}',
    ):
        raw = ("{" + fields + ',"prompt":' + text + "}").encode()
        with pytest.raises(BadRequest, match="more than once"):
            parse(raw, Kind.NATIVE_GENERATE)
    plain = ('{"model":"llama3.2","prompt":' + text + "}").encode()
    assert parse(plain, Kind.NATIVE_GENERATE).model == "llama3.2"


def test_a_deep_body_that_must_be_rewritten_is_forwarded_not_refused() -> None:
    schema: object = "x"
    for _ in range(600):
        schema = {"a": schema}
    body = {"model": "llama3.2", "messages": [], "response_format": schema, "stream": True}
    reading = parse(json.dumps(body).encode(), Kind.OPENAI_GENERATE)
    sent = json.loads(upstream_body(reading, b"", output_cap=100))
    assert sent["max_tokens"] == 100 and sent["stream_options"] == {"include_usage": True}
    assert sent["response_format"] == schema


@pytest.mark.parametrize(
    "kind, tools",
    [
        (Kind.ANTHROPIC_MESSAGES, [{"type": "web_search_20250305", "name": "web_search"}]),
        (Kind.ANTHROPIC_MESSAGES, [{"TYPE": "Web_Search_20260209", "name": "s"}]),
        (Kind.OPENAI_RESPONSES, [{"type": "function", "name": "f"}, {"type": "web_search"}]),
        (Kind.OPENAI_RESPONSES, [{"type": "web_fetch"}]),
    ],
)
def test_tools_ollama_runs_on_its_cloud_account_are_refused(
    kind: Kind, tools: list[dict[str, str]]
) -> None:
    from server.errors import Forbidden
    from server.relay.body import Rules

    body = {"model": "llama3.2", "max_tokens": 5, "messages": [], "input": "hi", "Tools": tools}
    with pytest.raises(Forbidden, match="ollama.com"):
        parse(json.dumps(body).encode(), kind)
    allowed = parse(json.dumps(body).encode(), kind, Rules(allow_cloud=True))
    assert allowed.model == "llama3.2"
    client_tool = {**body, "Tools": [{"type": "function", "name": "web_search", "parameters": {}}]}
    assert parse(json.dumps(client_tool).encode(), kind).model == "llama3.2"
