"""Unit tests of the Go-style decoder and of Ollama's request specs built on it.

The expected values of the generic cases (folding, last-wins, merging, null, numbers, strings,
syntax messages, durations) were checked against Go's encoding/json and time packages; the
custom-unmarshaler cases follow Go 1.26's decode.go, as Ollama (go 1.26.0) is built with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_ollama import structs, structs_anthropic, structs_openai
from tests.fake_ollama.godecode import (
    ANY,
    BOOL,
    BYTES,
    FLOAT32,
    INT,
    STRING,
    GoJSONError,
    Map,
    Ptr,
    Slice,
    Struct,
    decode,
    fold_name,
)
from tests.fake_ollama.gotime import MIN_INT64, DurationError, go_int64, parse_duration

MESSAGE = Struct("main.Message", [("role", STRING), ("content", STRING)])
REQUEST = Struct(
    "main.ChatRequest",
    [
        ("model", STRING),
        ("messages", Slice(MESSAGE)),
        ("stream", Ptr(BOOL)),
        ("options", Map(ANY)),
        ("max_tokens", Ptr(INT)),
        ("keep", Ptr(FLOAT32)),
        ("stream_options", Ptr(Struct("main.StreamOptions", [("include_usage", BOOL)]))),
        ("images", Slice(BYTES)),
        ("tools", Slice(ANY)),
    ],
)


def ok(body: bytes | str, spec: Struct = REQUEST) -> dict[str, Any]:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    result: dict[str, Any] = decode(raw, spec)
    return result


def err(body: bytes | str, spec: Struct = REQUEST) -> str:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    with pytest.raises(GoJSONError) as caught:
        decode(raw, spec)
    return caught.value.message


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ('{"Model":"m"}', "model", "m"),
        ('{"MODEL":"m"}', "model", "m"),
        ('{"mOdEl":"m"}', "model", "m"),
        ('{"mod\\u0065l":"m"}', "model", "m"),
        ('{"Stream_Optionſ":{"include_usage":true}}', "stream_options", {"include_usage": True}),
        ('{"optionſ":{"x":1}}', "options", {"x": 1.0}),
        ('{"\u212aeep":1}', "keep", 1.0),
        ('{"MaX_ToKeNs":3}', "max_tokens", 3),
    ],
)
def test_keys_fold_like_go(body: str, field: str, value: Any) -> None:
    assert ok(body) == {field: value}


def test_fold_name() -> None:
    assert fold_name("optionſ") == fold_name("OPTIONS") == "OPTIONS"
    assert fold_name("\u212a") == "K"
    assert fold_name("µ") == fold_name("μ") == fold_name("Μ")
    assert fold_name("İ") == "İ" and fold_name("ı") == "ı"  # no simple folding
    assert fold_name("modeł") != fold_name("model")


def test_exact_name_beats_fold_and_fold_collisions_take_the_first_field() -> None:
    spec = Struct("main.T", [("Aa", STRING), ("aA", STRING)])
    assert ok('{"aA":"x"}', spec) == {"aA": "x"}
    assert ok('{"AA":"x"}', spec) == {"Aa": "x"}


def test_last_key_wins_and_unknown_keys_and_trailing_data_are_ignored() -> None:
    assert ok('{"model":"a","Model":"b"}') == {"model": "b"}
    assert ok('{"max_tokens":3,"MAX_TOKENS":4}') == {"max_tokens": 4}
    assert ok('{"model":"a","nope":1}') == {"model": "a"}
    assert ok('{"model":"x"}{"model":"y"}') == {"model": "x"}
    assert ok('{"model":"x"} trailing garbage') == {"model": "x"}


# --- merging and null ---------------------------------------------------------------------------


def test_repeated_objects_merge_and_arrays_replace() -> None:
    assert ok('{"options":{"a":1},"options":{"b":2}}') == {"options": {"a": 1.0, "b": 2.0}}
    assert ok('{"options":{"a":1},"options":null,"options":{"b":2}}') == {"options": {"b": 2.0}}
    merged = ok('{"messages":[{"role":"u","content":"A"}],"messages":[{"role":"x"}]}')
    assert merged == {"messages": [{"role": "x", "content": "A"}]}
    assert ok('{"messages":[{"role":"u"}],"messages":[]}') == {"messages": []}
    assert ok('{"stream_options":{"include_usage":true},"stream_options":{}}') == {
        "stream_options": {"include_usage": True}
    }


def test_null_clears_pointers_only() -> None:
    assert ok('{"model":"a","model":null}') == {"model": "a"}
    assert ok('{"stream":true,"stream":null}') == {}
    assert ok('{"messages":[null]}') == {"messages": [{}]}
    assert ok("null") == {}


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"max_tokens":0.5}',
            "json: cannot unmarshal number 0.5 into Go struct field ChatRequest.max_tokens of type int",
        ),
        (
            '{"max_tokens":1e2}',
            "json: cannot unmarshal number 1e2 into Go struct field ChatRequest.max_tokens of type int",
        ),
        (
            '{"max_tokens":9223372036854775808}',
            (
                "json: cannot unmarshal number 9223372036854775808 into Go struct field "
                "ChatRequest.max_tokens of type int"
            ),
        ),
        (
            '{"keep":1e39}',
            "json: cannot unmarshal number 1e39 into Go struct field ChatRequest.keep of type float32",
        ),
        (
            '{"options":{"a":1e400}}',
            "json: cannot unmarshal number 1e400 into Go struct field ChatRequest.options of type float64",
        ),
        (
            '{"messages":"hi"}',
            "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []main.Message",
        ),
        (
            '{"messages":[{"role":5}]}',
            "json: cannot unmarshal number into Go struct field Message.messages.role of type string",
        ),
        (
            '{"model":5,"stream":"x"}',
            "json: cannot unmarshal number into Go struct field ChatRequest.model of type string",
        ),
        ("[1]", "json: cannot unmarshal array into Go value of type main.ChatRequest"),
        ('{"images":["aGk"]}', "illegal base64 data at input byte 0"),
    ],
)
def test_type_errors_read_like_go(body: str, message: str) -> None:
    assert err(body) == message


def test_numbers() -> None:
    assert ok('{"max_tokens":-0}') == {"max_tokens": 0}
    assert ok('{"max_tokens":-9223372036854775808}') == {"max_tokens": MIN_INT64}
    assert ok('{"options":{"n":0.5,"m":1E2}}') == {"options": {"n": 0.5, "m": 100.0}}


def test_strings_replace_bad_utf8_and_lone_surrogates() -> None:
    assert ok(b'{"model":"\\ud800x"}') == {"model": "\ufffdx"}
    assert ok(b'{"model":"\\ud800\\udc00"}') == {"model": "\U00010000"}
    assert ok(b'{"model":"\\ud800\\ud800"}') == {"model": "\ufffd\ufffd"}
    assert ok(b'{"model":"\xff\xe2\x82"}') == {"model": "\ufffd" * 3}  # one per invalid byte
    assert ok(b'{"model":"\xed\xa0\x80"}') == {"model": "\ufffd" * 3}
    assert ok(b'{"images":["aGk="]}') == {"images": [b"hi"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b'{"model":', "unexpected EOF"),
        (b'{"model":NaN}', "invalid character 'N' looking for beginning of value"),
        (b'{"model":-Infinity}', "invalid character 'I' in numeric literal"),
        (b'{"a":Infinity}', "invalid character 'I' looking for beginning of value"),
        (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b'{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
        (b'{"a":"\x01"}', "invalid character '\\x01' in string literal"),
        (b'{"a":"\\x"}', "invalid character 'x' in string escape code"),
        (b'{"a":1.}', "invalid character '}' after decimal point in numeric literal"),
        (b'{"a":01}', "invalid character '1' after object key:value pair"),
        (b"{a:1}", "invalid character 'a' looking for beginning of object key string"),
        (b'{"a":[1,]}', "invalid character ']' looking for beginning of value"),
        (b'\xef\xbb\xbf{"a":1}', "invalid character 'ï' looking for beginning of value"),
    ],
)
def test_syntax_errors_read_like_go(body: bytes, message: str) -> None:
    assert err(body) == message


# --- Ollama's structs -------------------------------------------------------------------------


def test_chat_request_as_ollama_decodes_it() -> None:
    body = ok(
        '{"MODEL":"a","model":"LLAMA3.2","Messages":[{"ROLE":"USER","content":"hi"}],'
        '"optionſ":{"num_predict":0.5,"NUM_PREDICT":3},"stream":false,"keep_alive":"10m"}',
        structs.CHAT,
    )
    assert body["model"] == "LLAMA3.2"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["options"] == {"num_predict": 0.5, "NUM_PREDICT": 3.0}  # map keys: no folding
    assert body["stream"] is False
    assert body["keep_alive"] == 600_000_000_000
    assert structs.options_from_map(body["options"]) == {"num_predict": 0}
    assert structs.num_predict(body["options"]) is None  # 0 means no limit


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ('"5m"', 300_000_000_000),
        ("30", 30_000_000_000),
        ("0", 0),
        ("-1", 2**63 - 1),
        ('"-1m"', 2**63 - 1),
        ("1e11", MIN_INT64),
    ],
)
def test_keep_alive(value: str, ns: int) -> None:
    assert ok(f'{{"keep_alive":{value}}}', structs.GENERATE) == {"keep_alive": ns}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", "Unsupported type: 'bool'"),
        ("[]", "Unsupported type: '[]interface {}'"),
        ('"soon"', 'time: invalid duration "soon"'),
        ('"5"', 'time: missing unit in duration "5"'),
    ],
)
def test_keep_alive_errors(value: str, message: str) -> None:
    assert err(f'{{"keep_alive":{value}}}', structs.GENERATE) == message


def test_think_values() -> None:
    assert ok('{"think":true}', structs.CHAT) == {"think": True}
    assert ok('{"think":"high"}', structs.CHAT) == {"think": "high"}
    assert ok('{"think":null}', structs.CHAT) == {}
    assert err('{"think":"lots"}', structs.CHAT).startswith('invalid think value: "lots"')
    assert err('{"think":1}', structs.CHAT).startswith("think must be a boolean or string")


def test_custom_unmarshaler_type_errors_abort_with_the_outer_context() -> None:
    assert err('{"messages":[{"content":5}]}', structs.CHAT) == (
        "json: cannot unmarshal number into Go struct field ChatRequest.messages.content "
        "of type string"
    )
    assert err('{"messages":[5]}', structs.CHAT) == (
        "json: cannot unmarshal number into Go struct field ChatRequest.messages of type api.Alias"
    )


def test_options_from_map() -> None:
    options = {
        "num_predict": 1e300,
        "num_ctx": 2048.9,
        "temperature": 0.5,
        "stop": ["a"],
        "Num_Predict": 4.0,
        "seed": None,
    }
    assert structs.options_from_map(options) == {
        "num_predict": MIN_INT64,
        "num_ctx": 2048,
        "temperature": 0.5,
        "stop": ["a"],
    }
    with pytest.raises(structs.OptionError, match='option "num_ctx" must be of type integer'):
        structs.options_from_map({"num_ctx": "big"})
    assert structs.num_predict({"num_predict": 7.9}) == 7
    assert structs.num_predict({"num_predict": -1.0}) is None


def test_openai_structs() -> None:
    body = ok(
        '{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,'
        '"max_completion_tokens":1,"Stream":true,"stream_options":{"Include_Usage":true}}',
        structs_openai.CHAT_COMPLETION,
    )
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert err('{"max_tokens":0.5}', structs_openai.CHAT_COMPLETION) == (
        "json: cannot unmarshal number 0.5 into Go struct field "
        "ChatCompletionRequest.max_tokens of type int"
    )


def test_responses_input() -> None:
    spec = structs_openai.RESPONSES
    assert ok('{"input":"hi"}', spec)["input"] == {"text": "hi"}
    items = ok(
        '{"input":[{"role":"user","content":"a"},{"TYPE":"message","role":"user",'
        '"content":[{"type":"input_text","text":"b"}]}]}',
        spec,
    )["input"]["items"]
    assert [i["content"][0]["text"] for i in items] == ["a", "b"]
    assert err('{"input":[{"type":"nope"}]}', spec) == 'input[0]: unknown input item type: "nope"'
    assert err('{"input":5}', spec) == (
        "input must be a string or array: json: cannot unmarshal number into Go value of "
        "type []json.RawMessage"
    )
    assert ok('{"max_output_tokens":9}', spec)["max_output_tokens"] == 9


def test_anthropic_messages() -> None:
    spec = structs_anthropic.MESSAGES
    body = ok('{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}', spec)
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert err('{"messages":[{"role":"user"}]}', spec) == "unexpected end of JSON input"
    assert err('{"max_tokens":1.5}', spec) == (
        "json: cannot unmarshal number 1.5 into Go struct field MessagesRequest.max_tokens of type int"
    )


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("5m", 300_000_000_000),
        ("1h30m", 5_400_000_000_000),
        (".5s", 500_000_000),
        ("-1m", -60_000_000_000),
        ("1µs", 1000),
        ("+0", 0),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_go_int64_conversion() -> None:
    assert go_int64(2.9) == 2 and go_int64(-2.9) == -2
    assert go_int64(1e19) == go_int64(-1e19) == go_int64(float("nan")) == MIN_INT64
