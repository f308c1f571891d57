"""Event bytes: every text field storable before it is queued, and back to the same record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from server.accounting.event import (
    WIDTHS,
    BadEvent,
    decode_event,
    encode_event,
    storable_text,
)
from server.accounting.record import PromptRecord, RequestRecord

WHEN = datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=UTC)


def record(**fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": "0123abcd",
        "surface": "api",
        "method": "POST",
        "path": "/api/chat",
        "status": 200,
        "time": WHEN,
        **fields,
    }
    return RequestRecord(**values)  # type: ignore[arg-type]


def test_an_ordinary_record_round_trips_unchanged() -> None:
    rec = record(
        client_request_id="client-1",
        tenant_id=3,
        key_id=7,
        key_prefix="nz_abcdefgh",
        model="llama3.2",
        backend="main",
        latency_ms=12.5,
        ttfb_ms=3.25,
        prompt_tokens=10,
        completion_tokens=5,
        tokens_estimated=True,
        client_ip="10.0.0.1",
        user_agent="curl/8.5",
        error=None,
        limit="key:requests",
        usage_day="2026-11-30",
        prompt=PromptRecord('{"x": "ü"}', "answer", 7),
    )
    data = encode_event(rec)
    assert json.loads(data)["v"] == 1
    assert decode_event(data) == rec


def test_odd_input_is_made_storable_before_it_is_queued() -> None:
    rec = record(
        method="MKCALENDAR-AND-THEN-SOME-MORE-LETTERS-THAN-THIRTY-TWO",
        path="/api/" + "a" * 65536,
        model="\ud800",
        user_agent="agent\x00with nul \udcff",
        error="e" * 100,
        prompt=PromptRecord("body \x00 \ud800", "text", 7),
        prompt_tokens=2**40,
        completion_tokens=-3,
        latency_ms=float("nan"),
    )
    data = encode_event(rec)
    data.decode("utf-8")  # valid UTF-8
    back = decode_event(data)
    assert len(back.method) == WIDTHS["method"] == 32 and back.method.endswith("…")
    assert len(back.path) == WIDTHS["path"] and back.path.startswith("/api/aaa")
    assert back.model == "\ufffd"
    assert back.user_agent == "agent\ufffdwith nul \ufffd"
    assert back.error is not None and len(back.error) == WIDTHS["error"]
    assert back.prompt == PromptRecord("body \ufffd \ufffd", "text", 7)
    assert (back.prompt_tokens, back.completion_tokens) == (2**31 - 1, 0)
    assert back.latency_ms is None


def test_entries_written_by_anything_else_are_sanitised_the_same_way() -> None:
    raw = encode_event(record(user_agent="UA", model="m"))
    raw = raw.replace(b'"UA"', b'"\\u0000\xff\xfe"').replace(b'"m"', b'"\\udc80x"')
    back = decode_event(raw)
    assert back.user_agent == "\ufffd\ufffd\ufffd" and back.model == "\ufffdx"


BASE = {"v": 1, "request_id": "x", "surface": "api", "method": "GET", "path": "/", "status": 200}
BASE["time"] = "2026-11-30T00:00:00+00:00"


def _raw(**changes: object) -> bytes:
    return json.dumps(BASE | changes).encode()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"v": 99}', "unknown event version"),
        (b'{"v": 1, "request_id": "x"}', "field surface is missing"),
        (_raw(status="200"), "field status is not int"),
        (_raw(tenant_id=True), "field tenant_id is not int"),
        (_raw(time="yesterday"), "field time is not an ISO 8601 time"),
        (_raw(usage_day="today"), "field usage_day is not a date"),
        (_raw(prompt="text"), "field prompt is not an object"),
        (_raw(request_id=""), "without a request id"),
    ],
)
def test_what_is_no_event_is_refused_with_a_reason(raw: bytes, why: str) -> None:
    with pytest.raises(BadEvent, match=why):
        decode_event(raw)


def test_storable_text_cuts_to_the_width_and_marks_the_cut() -> None:
    assert storable_text("abc", 3) == "abc"
    assert storable_text("abcd", 3) == "ab…"
    assert storable_text("a\x00b") == "a\ufffdb"
