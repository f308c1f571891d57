"""HTTP helpers: exact content types, error shapes and Go-like JSON body parsing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sanic import HTTPResponse, Request

from .util import go_json_bytes, go_type_name

CT_JSON_UTF8 = "application/json; charset=utf-8"
CT_JSON = "application/json"
CT_NDJSON = "application/x-ndjson"
CT_SSE = "text/event-stream"
CT_TEXT_UTF8 = "text/plain; charset=utf-8"
CT_TEXT = "text/plain"
GO_CHUNK_LIMIT = 2048  # Go's net/http buffers this much before switching to chunked

OPENAI_ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error"}


class ApiError(Exception):
    """An error that maps to a `{"error": ...}` response."""

    def __init__(self, status: int, message: str, content_type: str = CT_JSON_UTF8) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.content_type = content_type


def raw(body: bytes, status: int = 200, content_type: str | None = None) -> HTTPResponse:
    """A response with an exact Content-Type (or none)."""
    response = HTTPResponse(body, status=status)
    if content_type is not None:
        response.headers["content-type"] = content_type
    return response


def json_response(obj: Any, status: int = 200, content_type: str = CT_JSON_UTF8) -> HTTPResponse:
    """Go-style JSON body."""
    return raw(go_json_bytes(obj), status, content_type)


async def send_json(
    request: Request,
    obj: Any,
    status: int = 200,
    content_type: str = CT_JSON_UTF8,
    newline: bool = False,
) -> HTTPResponse | None:
    """Like json_response, but bodies over 2 KiB go out chunked, as Go's server does."""
    body = go_json_bytes(obj, newline)
    if len(body) <= GO_CHUNK_LIMIT:
        return raw(body, status, content_type)
    response = await request.respond(status=status, content_type=content_type)
    await response.send(body)
    await response.eof()
    return None


def native_error(status: int, message: str, content_type: str = CT_JSON_UTF8) -> HTTPResponse:
    """Native `{"error": "..."}`."""
    return json_response({"error": message}, status, content_type)


def openai_error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI-compatible error object."""
    return {
        "error": {
            "message": message,
            "type": OPENAI_ERROR_TYPES.get(status, "api_error"),
            "param": None,
            "code": None,
        }
    }


def openai_error(status: int, message: str, content_type: str = CT_JSON) -> HTTPResponse:
    """OpenAI-compatible error response (newline-terminated like Ollama's writer)."""
    return raw(
        go_json_bytes(openai_error_body(status, message), newline=True), status, content_type
    )


def _go_syntax_error(text: str, err: json.JSONDecodeError) -> str:
    if err.pos >= len(text.rstrip()):
        return "unexpected EOF"
    char = text[err.pos]
    if err.msg.startswith("Expecting property name"):
        return f"invalid character '{char}' looking for beginning of object key string"
    if err.msg.startswith("Expecting ',' delimiter") or err.msg.startswith("Expecting ':'"):
        return f"invalid character '{char}' after object key:value pair"
    if err.msg.startswith("Extra data"):
        return f"invalid character '{char}' after top-level value"
    return f"invalid character '{char}' looking for beginning of value"


def parse_json(
    request: Request, struct: str, empty_message: str = "missing request body"
) -> dict[str, Any]:
    """Decode a JSON object body with Go's error messages; raises ApiError(400)."""
    text = request.body.decode("utf-8", errors="replace")
    ctype = CT_JSON_UTF8
    if not text.strip():
        raise ApiError(400, empty_message, ctype)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ApiError(400, _go_syntax_error(text, err), ctype) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = go_type_name(data)
        raise ApiError(400, f"json: cannot unmarshal {kind} into Go value of type {struct}", ctype)
    return data


def check_types(
    body: dict[str, Any], struct: str, spec: Mapping[str, tuple[tuple[type, ...], str]]
) -> None:
    """Emulate Go unmarshal type errors for the given fields."""
    for key, (types, go_type) in spec.items():
        value = body.get(key)
        if value is None:
            continue
        bad_bool = isinstance(value, bool) and bool not in types
        if bad_bool or not isinstance(value, types):
            short = struct.removeprefix("api.").removeprefix("openai.")
            raise ApiError(
                400,
                f"json: cannot unmarshal {go_type_name(value)} into Go struct "
                f"field {short}.{key} of type {go_type}",
            )


def decode_body(request: Request) -> Any:
    """Best-effort JSON body for request records (None when absent or not JSON)."""
    if not request.body:
        return None
    try:
        return json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
