"""The end of a stream the gateway stops at its budget: each surface's length-limited ending.

When an extension of a stepped reservation is refused, the relay closes the upstream request
and ends the client's stream the way that surface ends an answer cut by its output cap, so the
client sees a normal, truncated answer (and official clients do not raise).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def native(path: str, model: str, prompt: int, sent: int) -> bytes:
    """/api/chat and /api/generate: a final `done` line with done_reason "length"."""
    line: dict[str, Any] = {"model": model, "created_at": _now()}
    if path.endswith("/chat"):
        line["message"] = {"role": "assistant", "content": ""}
    else:
        line["response"] = ""
    line.update(done=True, done_reason="length", prompt_eval_count=prompt, eval_count=sent)
    return orjson.dumps(line) + b"\n"


def openai(path: str, model: str, prompt: int, sent: int, include_usage: bool) -> bytes:
    """/v1/chat/completions and /v1/completions: finish_reason "length", usage, [DONE]."""
    created = int(time.time())
    usage = {"prompt_tokens": prompt, "completion_tokens": sent, "total_tokens": prompt + sent}
    if path.endswith("/chat/completions"):
        base: dict[str, Any] = {
            "id": "chatcmpl-gw",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_ollama",
        }
        finish = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    else:
        base = {"id": "cmpl-gw", "object": "text_completion", "created": created, "model": model}
        finish = {**base, "choices": [{"text": "", "index": 0, "finish_reason": "length"}]}
    out = _sse(finish)
    if include_usage:
        out += _sse({**base, "choices": [], "usage": usage})
    return out + b"data: [DONE]\n\n"


def anthropic(model: str, prompt: int, sent: int, open_block: int | None) -> bytes:
    """/v1/messages: the open block (if any) stops, message_delta says max_tokens, message_stop."""
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"input_tokens": prompt, "output_tokens": sent},
    }
    stop = b""
    if open_block is not None:
        stop = _sse({"type": "content_block_stop", "index": open_block}, "content_block_stop")
    return stop + _sse(delta, "message_delta") + _sse({"type": "message_stop"}, "message_stop")


def responses(model: str, prompt: int, sent: int) -> bytes:
    """/v1/responses: response.incomplete, for the max_output_tokens reason."""
    response = {
        "id": "resp_gw",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "model": model,
        "output": [],
        "usage": {"input_tokens": prompt, "output_tokens": sent, "total_tokens": prompt + sent},
    }
    return _sse({"type": "response.incomplete", "response": response}, "response.incomplete")
