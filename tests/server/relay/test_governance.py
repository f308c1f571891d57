"""The one reading of a body: governed fields as Go resolves them, ambiguity and bad caps refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.errors import BadRequest, Forbidden
from server.relay.body import Kind, Rules, parse, upstream_body
from server.relay.gofields import fold
from server.relay.keepalive import keep_alive_seconds

DEFAULT = Rules()


def _read(body: Any, kind: Kind = Kind.NATIVE_GENERATE, rules: Rules = DEFAULT) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reading = parse(raw, kind, rules)
    sent: dict[str, Any] = json.loads(upstream_body(reading, raw, None))
    return sent


@pytest.mark.parametrize("name", ["Model", "MODEL", "mOdEl"])
def test_a_case_variant_names_the_field(name: str) -> None:
    assert _read({name: "qwen3:8b", "prompt": "x"})["model"] == "qwen3:8b"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"llama3.2","Model":"qwen3:8b"}',
        b'{"model":"llama3.2","model":"qwen3:8b"}',
        b'{"model":"llama3.2","mod\\u0065l":"qwen3:8b"}',
        b'{"model":"a","options":{"num_predict":50},"OPTIONS":{"num_predict":100000}}',
        b'{"model":"a","options":{"num_predict":50},"option\\u017f":{"num_predict":-1}}',
        b'{"model":"a","options":{"num_predict":5,"num_predict":-1}}',
        b'{"model":"a","keep_alive":"1m","KEEP_ALIVE":-1}',
    ],
)
def test_a_governed_field_given_twice_is_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="more than once"):
        parse(raw, Kind.NATIVE_GENERATE)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"m","max_tokens":5,"MAX_TOKENS":100000}',
        b'{"model":"m","max_tokens":5,"Max_Tokens":100000}',
        b'{"model":"m","stream":true,"stream_options":{"include_usage":true},"Stream_Options":{}}',
        b'{"model":"m","stream":true,"stream_options":{"include_usage":true,"INCLUDE_USAGE":false}}',
        b'{"model":"m","max_completion_tokens":5,"max_completion_tokens":50}',
    ],
)
def test_openai_caps_and_stream_options_given_twice_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="more than once"):
        parse(raw, Kind.OPENAI_GENERATE)


def test_folding_is_go_simple_folding() -> None:
    assert fold("optionſ") == fold("OPTIONS") == fold("Options")
    assert fold("\u212aeep_alive") == fold("keep_alive")
    assert fold("modeł") != fold("model")


def test_unicode_folded_spelling_alone_is_read_and_forwarded_canonically() -> None:
    sent = _read(b'{"model":"a","optio\\u0146s":{},"option\xc5\xbf":{"num_predict":7}}')
    assert sent["options"] == {"num_predict": 7}
    assert not any(k.startswith("option") and k != "options" for k in sent if k != "optio\u0146s")


@pytest.mark.parametrize("cap", [0.5, "10", True, [1], {"n": 1}])
def test_a_cap_that_is_not_a_whole_number_is_a_400(cap: Any) -> None:
    with pytest.raises(BadRequest):
        _read({"model": "a", "options": {"num_predict": cap}})
    with pytest.raises(BadRequest):
        _read({"model": "a", "max_tokens": cap}, Kind.OPENAI_GENERATE)


@pytest.mark.parametrize("cap, read", [(0, None), (-1, None), (-2, None), (None, None), (7, 7)])
def test_caps_as_ollama_reads_them(cap: Any, read: int | None) -> None:
    native = parse(
        json.dumps({"model": "a", "options": {"num_predict": cap}}).encode(), Kind.NATIVE_GENERATE
    )
    v1 = parse(json.dumps({"model": "a", "max_tokens": cap}).encode(), Kind.OPENAI_GENERATE)
    assert native.max_output == v1.max_output == read


def test_an_integral_float_cap_and_a_huge_one() -> None:
    assert (
        parse(b'{"model":"a","options":{"num_predict":5.0}}', Kind.NATIVE_GENERATE).max_output == 5
    )
    huge = parse(b'{"model":"a","max_tokens":1e30}', Kind.OPENAI_GENERATE)
    assert huge.max_output == 2**31 - 1
    assert json.loads(upstream_body(huge, b"", None))["max_tokens"] == 2**31 - 1


def test_the_smaller_of_max_tokens_and_max_completion_tokens_is_forwarded() -> None:
    raw = b'{"model":"m","max_tokens":50,"max_completion_tokens":20}'
    sent = json.loads(upstream_body(parse(raw, Kind.OPENAI_GENERATE), raw, None))
    assert sent["max_tokens"] == 20 and "max_completion_tokens" not in sent


def test_the_gateway_cap_replaces_the_clients() -> None:
    reading = parse(
        b'{"model":"a","options":{"num_predict":-1,"temperature":0}}', Kind.NATIVE_GENERATE
    )
    sent = json.loads(upstream_body(reading, b"", 300))
    assert sent["options"] == {"num_predict": 300, "temperature": 0}


def test_hardware_options_never_reach_the_backend() -> None:
    sent = _read(
        {
            "model": "a",
            "options": {
                "num_gpu": 99,
                "main_gpu": 1,
                "num_thread": 64,
                "use_mmap": False,
                "low_vram": True,
                "numa": True,
                "temperature": 0.2,
            },
        }
    )
    assert sent["options"] == {"temperature": 0.2}
    embed = _read({"model": "a", "input": "x", "options": {"num_gpu": 1}}, Kind.NATIVE_EMBED)
    assert embed["options"] == {}


@pytest.mark.parametrize(
    "given, sent",
    [
        ("5m", "5m"),
        (600, 600),
        ("2h", "1800s"),
        (-1, "1800s"),
        ("-1m", "1800s"),
        (0, 0),
        ("0", "0"),
    ],
)
def test_keep_alive_is_capped(given: Any, sent: Any) -> None:
    assert _read({"model": "a", "keep_alive": given})["keep_alive"] == sent


def test_keep_alive_values_ollama_refuses_are_400() -> None:
    for bad in ("5 minutes", True, [1], {"s": 1}, ""):
        with pytest.raises(BadRequest):
            _read({"model": "a", "keep_alive": bad})
    assert keep_alive_seconds("1h30m") == 5400 and keep_alive_seconds("300ms") == 0.3


def test_num_ctx_above_the_maximum_is_a_400() -> None:
    rules = Rules(max_num_ctx=8192)
    assert (
        _read({"model": "a", "options": {"num_ctx": 8192}}, rules=rules)["options"]["num_ctx"]
        == 8192
    )
    with pytest.raises(BadRequest, match="num_ctx"):
        _read({"model": "a", "options": {"num_ctx": 8193}}, rules=rules)


@pytest.mark.parametrize("model", ["gpt-oss:120b-cloud", "kimi-k2:1t-cloud", "x:cloud", "X:CLOUD "])
def test_cloud_models_are_the_operators(model: str) -> None:
    with pytest.raises(Forbidden, match="cloud model"):
        _read({"model": model})
    assert _read({"model": model}, rules=Rules(allow_cloud=True))["model"] == model


def test_show_reads_model_then_name() -> None:
    assert parse(b'{"name":"a"}', Kind.LOOKUP).model == "a"
    assert parse(b'{"model":"","name":"a"}', Kind.LOOKUP).model == "a"
    assert parse(b'{"model":"b","name":"a"}', Kind.LOOKUP).model == "b"
    raw = b'{"model":"","name":"a"}'
    sent = json.loads(upstream_body(parse(raw, Kind.LOOKUP), raw, None))
    assert sent == {"model": "a"}


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"model":"a","messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"model":"a","options":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
        b'{"model":"a","n":1e999}',
        b'{"model":"a","n":-1e999}',
        b'{"model":"a","n":NaN}',
        b'{"model":"a","n":Infinity}',
        b'{"model":"\\ud800"}',
        b'{"model":"a","prompt":"\\udc00"}',
        b'{"model":"a\xff"}',
        b'{"model":"a"} {"model":"b"}',
        b'{"model":["a"]}',
    ],
)
def test_bad_input_is_a_400_not_a_500(raw: bytes) -> None:
    for kind in Kind:
        with pytest.raises(BadRequest):
            upstream_body(parse(raw, kind), raw, None)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"a","stream":"yes"}',
        b'{"model":"a","stream":1}',
        b'{"model":"a","options":[]}',
        b'{"model":"a","options":"x"}',
        b'{"model":"a","options":{"num_ctx":"big"}}',
        b'{"model":"a","keep_alive":{}}',
    ],
)
def test_wrong_types_for_native_governed_fields_are_400(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(raw, Kind.NATIVE_GENERATE)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"a","stream":"yes"}',
        b'{"model":"a","stream_options":[]}',
        b'{"model":"a","max_tokens":"5"}',
        b'{"model":"a","max_completion_tokens":[5]}',
    ],
)
def test_wrong_types_for_openai_governed_fields_are_400(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(raw, Kind.OPENAI_GENERATE)


def test_stream_options_as_go_reads_them() -> None:
    reading = parse(
        b'{"model":"m","stream":true,"Stream_Options":{"Include_Usage":true}}', Kind.OPENAI_GENERATE
    )
    assert reading.include_usage and reading.stream
    with pytest.raises(BadRequest):
        parse(b'{"model":"m","stream_options":{"include_usage":"yes"}}', Kind.OPENAI_GENERATE)


def test_a_deep_body_is_forwarded_as_sent_or_rewritten_whole() -> None:
    raw = b'{"model":"a","x":' + b"[" * 600 + b"]" * 600 + b"}"
    reading = parse(raw, Kind.NATIVE_GENERATE)  # Ollama reads 600 levels too
    assert upstream_body(reading, raw, None) is raw
    rewritten = json.loads(upstream_body(reading, raw, 100))  # deeper than orjson writes
    assert rewritten["options"] == {"num_predict": 100} and rewritten["x"] == json.loads(raw)["x"]
