"""Usage metering and the usage-chunk stripper, fed bytes split at every possible point."""

from __future__ import annotations

import json

import pytest

from server.accounting.meter import Meter, estimate_tokens
from server.relay import endings
from server.relay.framing import ZERO_USAGE, Passthrough, Records, UsageStripper, forwarder

NDJSON = b"".join(
    json.dumps(o, separators=(",", ":")).encode() + b"\n"
    for o in [
        {"model": "m", "response": "The", "done": False},
        {"model": "m", "response": " sky", "done": False},
        {"model": "m", "response": "", "done": True, "prompt_eval_count": 26, "eval_count": 2},
    ]
)
CHUNK = b'data: {"id":"c","object":"text_completion","choices":[{"text":"Hi","index":0}]%s}\n\n'
SSE = (
    CHUNK % ZERO_USAGE
    + CHUNK % ZERO_USAGE
    + b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,'
    b'"total_tokens":14}}\n\n' + b"data: [DONE]\n\n"
)


def split_everywhere(data: bytes) -> list[list[bytes]]:
    """The data cut in two at every offset (plus one byte at a time)."""
    return [[data[:i], data[i:]] for i in range(len(data) + 1)] + [
        [data[i : i + 1] for i in range(len(data))]
    ]


@pytest.mark.parametrize("capture", [False, True])
def test_ndjson_counts_and_bytes_unchanged(capture: bool) -> None:
    for parts in split_everywhere(NDJSON):
        meter = Meter(capture=capture)
        fwd = Passthrough(meter, "application/x-ndjson")
        out = b"".join(fwd.feed(p) for p in parts) + fwd.close()
        assert out == NDJSON
        counted = meter.counted(99, generates=True)
        assert (counted.prompt, counted.completion, counted.estimated) == (26, 2, False)
        assert meter.text == ("The sky" if capture else "")


def test_usage_chunk_and_zero_usage_are_stripped() -> None:
    expected = CHUNK % b"" + CHUNK % b"" + b"data: [DONE]\n\n"
    for parts in split_everywhere(SSE):
        meter = Meter(capture=False)
        fwd = UsageStripper(meter)
        out = b"".join(fwd.feed(p) for p in parts) + fwd.close()
        assert out == expected
        assert meter.counted(1, generates=True).total == 14


def test_sse_passes_unchanged_when_the_client_asked() -> None:
    meter = Meter(capture=False)
    fwd = forwarder(meter, "text/event-stream", strip_usage=False)
    assert fwd.feed(SSE) + fwd.close() == SSE
    assert meter.counted(1, generates=True).total == 14


def test_disconnect_mid_stream_counts_chunks_seen() -> None:
    meter = Meter(capture=False)
    Passthrough(meter, "application/x-ndjson").feed(NDJSON.split(b"\n", 2)[0] + b"\n{")
    counted = meter.counted(30, generates=True)
    assert (counted.prompt, counted.completion, counted.estimated) == (30, 1, True)


@pytest.mark.parametrize(
    "body,prompt,completion",
    [
        (
            b'{"response":"say \\"eval_count\\":7","done":true,"prompt_eval_count":5,"eval_count":3}',
            5,
            3,
        ),
        (
            b'{"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":4,"total_tokens":12}}',
            8,
            4,
        ),
        (b'{"model":"e","embeddings":[[0.1]],"prompt_eval_count":6}', 6, None),
    ],
)
def test_json_body_counts(body: bytes, prompt: int, completion: int | None) -> None:
    meter = Meter(capture=True)
    fwd = Passthrough(meter, "application/json; charset=utf-8")
    assert fwd.feed(body[:10]) + fwd.feed(body[10:]) + fwd.close() == body
    assert (meter.prompt, meter.completion) == (prompt, completion)


def test_embeddings_without_counts_are_estimated() -> None:
    meter = Meter(capture=False)
    fwd = Passthrough(meter, "application/json")
    fwd.feed(b'{"embedding":[0.5]}')
    fwd.close()
    counted = meter.counted(7, generates=False)
    assert (counted.prompt, counted.completion, counted.estimated) == (7, 0, True)
    assert estimate_tokens(0) == 0 and estimate_tokens(5) == 2


def _line(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def test_a_record_is_counted_by_the_text_it_carries_not_as_one_token() -> None:
    args = {"query": "x" * 8000, "done": True}  # a "done":true inside a tool call is not the end
    call = {"function": {"name": "search", "arguments": args}}
    meter = Meter(capture=False)
    meter.ndjson(_line({"model": "m", "message": {"role": "assistant", "content": "Hi"}}))
    meter.ndjson(_line({"model": "m", "message": {"role": "assistant", "tool_calls": [call]}}))
    meter.ndjson(_line({"model": "m", "message": {"content": " there", "thinking": "y" * 400}}))
    assert meter.prompt is None and meter.completion is None  # no final record yet
    assert meter.passed >= 1 + 8000 // 4 + 400 // 4
    short = Meter(capture=False)
    for word in ("The", " sky", " is", " understandably", " blue"):
        short.ndjson(_line({"model": "m", "response": word, "done": False}))
    assert short.passed == 5  # a token stream: one token a record


@pytest.mark.parametrize(
    "event",
    [
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"%s"}}]}}]}',
        b'data: {"choices":[{"index":0,"delta":{"reasoning":"%s"}}]}',
        b'event: content_block_delta\ndata: {"delta":{"type":"input_json_delta","partial_json":"%s"}}',
        b'event: content_block_delta\ndata: {"delta":{"type":"text_delta","text":"%s"}}',
        b'event: response.function_call_arguments.delta\ndata: {"delta":"%s"}',
        b'event: response.output_text.delta\ndata: {"delta":"%s"}',
    ],
)
def test_sse_records_count_the_text_they_carry(event: bytes) -> None:
    meter = Meter(capture=False)
    meter.sse(event % (b"z" * 4000) + b"\n\n")
    assert meter.passed >= 1000


def _event(name: str, **data: object) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), json.dumps({"type": name, **data}).encode())


def _stops(tail: bytes) -> list[object]:
    return [
        json.loads(e.split(b"data: ")[1])["index"]
        for e in tail.split(b"\n\n")
        if b"content_block_stop" in e
    ]


def test_a_messages_stream_cut_at_the_budget_stops_the_block_that_is_open() -> None:
    """Thinking is block 0, text block 1: a cut in the text stops block 1, not 0 again."""
    records = Records(Meter(capture=False), "text/event-stream", strip_usage=False)
    assert records.open_block is None
    thinking = _event("content_block_start", index=0, content_block={"type": "thinking"})
    delta = _event("content_block_delta", index=0, delta={"text": "content_block_start"})
    for record, open_block in [
        (_event("message_start", message={"content": []}), None),
        (thinking, 0),
        (delta, 0),
        (_event("content_block_stop", index=0), None),
        (_event("content_block_start", index=1, content_block={"type": "text"}), 1),
    ]:
        records.sent(records.take(record))
        assert records.open_block == open_block
    tail = endings.anthropic("m", 5, 9, records.open_block)
    assert _stops(tail) == [1] and tail.endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    records.sent(_event("content_block_stop", index=1))
    between = endings.anthropic("m", 5, 9, records.open_block)  # no block open: none stopped
    assert _stops(between) == [] and b"message_delta" in between
