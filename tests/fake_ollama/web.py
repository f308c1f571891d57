"""HTTP helpers: exact content types, error shapes and Go-style decoding of request bodies."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sanic import HTTPResponse, Request

from .godecode import GoJSONError, Struct, clean, decode
from .util import go_json_bytes

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
    """OpenAI-compatible error: from a writer (application/json, newline-terminated, as
    json.Encoder writes it) or from a middleware's c.JSON (charset=utf-8, no newline)."""
    body = go_json_bytes(openai_error_body(status, message), newline=content_type == CT_JSON)
    return raw(body, status, content_type)


ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """anthropic.NewError: {"type":"error","error":{"type","message"},"request_id":"req_…"}."""
    return {
        "type": "error",
        "error": {"type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": f"req_{secrets.token_hex(12)}",
    }


def anthropic_error(status: int, message: str, content_type: str = CT_JSON) -> HTTPResponse:
    """Anthropic error response (newline-terminated when written by AnthropicWriter)."""
    body = go_json_bytes(anthropic_error_body(status, message), newline=content_type == CT_JSON)
    return raw(body, status, content_type)


def decode_request(
    request: Request,
    spec: Struct,
    empty_message: str = "missing request body",
    content_type: str = CT_JSON_UTF8,
) -> dict[str, Any]:
    """The body decoded into `spec` as Go's json.Decoder would; ApiError(400) when Go fails.

    An empty body is `empty_message` ("missing request body" in native handlers, gin's "EOF"
    in the /v1 middlewares).
    """
    try:
        decoded: dict[str, Any] = decode(request.body, spec)
    except GoJSONError as err:
        raise ApiError(400, empty_message if err.eof else err.message, content_type) from err
    return decoded


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {clean(k): _printable(v) for k, v in value.items()}
    return value


def decode_body(request: Request) -> Any:
    """Best-effort JSON body for request records (None when absent or not JSON).

    Python's reading (last duplicate key wins, numbers as int or float), with lone surrogates
    replaced so that the record can be served as JSON; `decoded` holds Go's reading.
    """
    if not request.body:
        return None
    try:
        return _printable(json.loads(request.body, parse_constant=_reject_constant))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
