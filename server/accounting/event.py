"""The audit event on the queue: a RequestRecord made storable, as JSON bytes, and back.

Every text field is made storable before it is queued, so no odd input can make its row fail:
lone surrogates and NUL become U+FFFD (PostgreSQL rejects both; invalid UTF-8 never survives
the decode), and each field is cut to its column's width (the last kept character becomes
"…"). Numbers are bounded to their columns' types. `decode_event` applies the same rules again,
so an entry written by anything else is stored the same way, and raises BadEvent for bytes that
are not an event at all (the writer sets those aside as dead letters).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any

import orjson

from models import AuditEvent
from server.accounting.record import PromptRecord, RequestRecord

VERSION = 1
PROMPT_MAX_CHARS = 1_000_000  # per stored request body and response text
INT4_MAX = 2**31 - 1
CUT = "…"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TEXT_FIELDS = (
    "request_id",
    "client_request_id",
    "key_prefix",
    "surface",
    "method",
    "path",
    "model",
    "backend",
    "client_ip",
    "user_agent",
    "error",
    "limit",
)
_COUNT_FIELDS = ("prompt_tokens", "completion_tokens")
_FLOAT_FIELDS = ("latency_ms", "ttfb_ms")


class BadEvent(ValueError):
    """Bytes that do not decode to an audit event; the message says why, in one line."""


def _width(name: str) -> int:
    width = AuditEvent._meta.fields_map[name].max_length  # type: ignore[attr-defined]
    assert isinstance(width, int)
    return width


WIDTHS: dict[str, int] = {name: _width(name) for name in _TEXT_FIELDS}


def storable_text(text: str, width: int | None = None) -> str:
    """`text` without NUL or lone surrogates, at most `width` characters."""
    if not text.isascii() or "\x00" in text:
        text = _UNSTORABLE.sub("\ufffd", text)
    if width is not None and len(text) > width:
        text = text[: width - 1] + CUT
    return text


def _count(value: int) -> int:
    return min(max(int(value), 0), INT4_MAX)


def _float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


_FIELDS = tuple(f.name for f in fields(RequestRecord) if f.name != "prompt")


def _clean(data: dict[str, Any], prompt_max: int) -> dict[str, Any]:
    """Make the fields of a record (as a dict, prompt as a dict or None) storable, in place."""
    for name in _TEXT_FIELDS:
        value = data[name]
        if value is not None:
            data[name] = storable_text(value, WIDTHS[name])
    if not data["request_id"]:
        raise BadEvent("event without a request id")
    for name in _COUNT_FIELDS:
        data[name] = _count(data[name])
    for name in _FLOAT_FIELDS:
        data[name] = _float(data[name])
    data["status"] = min(max(int(data["status"]), 0), 999)
    prompt = data.get("prompt")
    if prompt is not None:
        data["prompt"] = {
            "request_body": storable_text(prompt["request_body"], prompt_max),
            "response_text": storable_text(prompt["response_text"], prompt_max),
            "ttl_days": min(max(int(prompt["ttl_days"]), 1), 36_500),
        }
    return data


def _record(data: dict[str, Any]) -> RequestRecord:
    prompt = data.pop("prompt", None)
    return RequestRecord(**data, prompt=None if prompt is None else PromptRecord(**prompt))


def _as_dict(rec: RequestRecord) -> dict[str, Any]:
    data = {name: getattr(rec, name) for name in _FIELDS}
    p = rec.prompt
    data["prompt"] = (
        None
        if p is None
        else {
            "request_body": p.request_body,
            "response_text": p.response_text,
            "ttl_days": p.ttl_days,
        }
    )
    return data


def storable(rec: RequestRecord, *, prompt_max: int = PROMPT_MAX_CHARS) -> RequestRecord:
    """The record with every field fit for its column."""
    return _record(_clean(_as_dict(rec), prompt_max))


def encode_event(rec: RequestRecord, *, prompt_max: int = PROMPT_MAX_CHARS) -> bytes:
    """The event bytes to queue (field `e` of a stream entry): storable, UTF-8 JSON."""
    data = _clean(_as_dict(rec), prompt_max)
    data["time"] = rec.time.astimezone(UTC).isoformat()
    data["v"] = VERSION
    try:
        return orjson.dumps(data)  # compact UTF-8; every text is storable (no lone surrogate)
    except TypeError:  # an id past 64 bits: encoded all the same, the writer sets it aside
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "request_id": str,
    "surface": str,
    "method": str,
    "path": str,
    "status": int,
    "time": str,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "client_request_id": str,
    "tenant_id": int,
    "key_id": int,
    "key_prefix": str,
    "model": str,
    "backend": str,
    "latency_ms": (int, float),
    "ttfb_ms": (int, float),
    "prompt_tokens": int,
    "completion_tokens": int,
    "tokens_estimated": bool,
    "client_ip": str,
    "user_agent": str,
    "error": str,
    "limit": str,
    "usage_day": str,
}


def _checked(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> None:
    value = data[name]
    if isinstance(value, bool) and kind is int:
        raise BadEvent(f"field {name} is not {kind.__name__}")
    if not isinstance(value, kind):
        raise BadEvent(f"field {name} is not {getattr(kind, '__name__', 'a number')}")


def _prompt(value: Any) -> PromptRecord | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadEvent("field prompt is not an object")
    body, text, days = value.get("request_body"), value.get("response_text"), value.get("ttl_days")
    if not isinstance(body, str) or not isinstance(text, str) or not isinstance(days, int):
        raise BadEvent("field prompt lacks request_body, response_text or ttl_days")
    return PromptRecord(body, text, days)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadEvent("field time is not an ISO 8601 time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def decode_event(raw: bytes, *, prompt_max: int = PROMPT_MAX_CHARS) -> RequestRecord:
    """The storable record in `raw`; BadEvent when it is not an event."""
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise BadEvent("not JSON") from exc
    if not isinstance(data, dict):
        raise BadEvent("not a JSON object")
    if data.get("v") != VERSION:
        raise BadEvent(f"unknown event version {data.get('v')!r}")
    for name, kind in _REQUIRED.items():
        if name not in data:
            raise BadEvent(f"field {name} is missing")
        _checked(data, name, kind)
    values = {name: data[name] for name in _REQUIRED}
    for name, kind in _OPTIONAL.items():
        if data.get(name) is not None:
            _checked(data, name, kind)
            values[name] = data[name]
    values["time"] = _time(data["time"])
    if "usage_day" in values:
        try:
            date.fromisoformat(values["usage_day"])
        except ValueError as exc:
            raise BadEvent("field usage_day is not a date") from exc
    rec = RequestRecord(**values, prompt=_prompt(data.get("prompt")))
    return storable(rec, prompt_max=prompt_max)
