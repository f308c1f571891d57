"""Request records for /_fake/requests, each with the decoded view the fake acted on.

Every API request gets a record (method, path, query, headers, body as Python's json reads it)
and, once a handler has decoded it, a `decoded` object: what Ollama would have run.

    model            the model as decoded (and echoed), e.g. "LLAMA3.2"
    stream           whether the answer streams
    options          the options map the handler received (for /v1 routes: the one their
                     middleware builds, e.g. {"num_predict": 5, "temperature": 1.0, …})
    num_predict      the effective cap after api.Options.FromMap (None = no limit)
    keep_alive_ns    keep_alive in nanoseconds (None = not given, -> the 5m default)
    prompt_eval_count, eval_count   the token counts the fake reported
    generated        tokens the backend produced before it finished or was cancelled
    done_reason      "stop", "length", "load", "unload"
    outcome          "done", "cancelled", "error", "busy" (503 before any byte)
    status           the HTTP status of an error answered before any byte
"""

from __future__ import annotations

import time
from typing import Any

from sanic import Request

from .state import State
from .web import decode_body


def record(request: Request, state: State, path: str) -> dict[str, Any]:
    """Remember a request and attach its record to request.ctx."""
    headers = {k.lower(): ", ".join(request.headers.getall(k)) for k in request.headers}
    entry: dict[str, Any] = {
        "method": request.method,
        "path": path,
        "query": request.query_string,
        "headers": headers,
        "body": decode_body(request),
        "time": time.time(),
    }
    state.requests.append(entry)
    request.ctx.fake_record = entry
    return entry


def view(request: Request) -> dict[str, Any]:
    """The decoded view of this request (a throw-away dict outside recorded requests)."""
    entry: dict[str, Any] | None = getattr(request.ctx, "fake_record", None)
    if entry is None:
        return {}
    decoded: dict[str, Any] = entry.setdefault("decoded", {})
    return decoded


def note(request: Request, **fields: Any) -> dict[str, Any]:
    """Merge fields into the decoded view; returns it."""
    decoded = view(request)
    decoded.update(fields)
    return decoded
