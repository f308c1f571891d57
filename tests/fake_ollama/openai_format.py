"""OpenAI-compatible answer shapes: chat.completion(.chunk) and text_completion writers."""

from __future__ import annotations

import random
import time
from typing import Any

from sanic import HTTPResponse

from .generation import Result
from .plan import Piece, ToolCall
from .util import go_json, go_json_bytes
from .web import CT_JSON, CT_SSE, openai_error

DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    """One SSE data event."""
    return b"data: " + go_json_bytes(obj) + b"\n\n"


def usage(prompt: int, completion: int) -> dict[str, int]:
    """OpenAI usage object."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def openai_tool(call: ToolCall) -> dict[str, Any]:
    """OpenAI tool call (arguments as a JSON string)."""
    return {
        "id": call.id,
        "index": call.index,
        "type": "function",
        "function": {"name": call.name, "arguments": go_json(call.arguments)},
    }


class _Base:
    stream_content_type = CT_SSE
    aggregate_content_type = CT_JSON
    aggregate_newline = True
    stream_headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, prefix: str, model: str, with_usage: bool) -> None:
        self.id = f"{prefix}-{random.randint(0, 998)}"
        self.model = model
        self.with_usage = with_usage
        self.created = int(time.time())

    def error(self, status: int, message: str, streaming: bool) -> HTTPResponse:
        """OpenAI error object, application/json."""
        return openai_error(status, message)


class ChatFormatter(_Base):
    """chat.completion(.chunk) objects."""

    def __init__(self, model: str, with_usage: bool) -> None:
        super().__init__("chatcmpl", model, with_usage)
        self.role_sent = False
        self._content_event: tuple[bytes, bytes] | None = None

    def _chunk(
        self, delta: dict[str, Any], finish: str | None, model: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model if model is None else model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def piece(self, piece: Piece, created_ns: int) -> list[bytes]:
        """One chunk per piece; role only on the first."""
        if self.role_sent and piece.kind == "content" and piece.tool is None:
            if self._content_event is None:  # the common case, built directly
                head, _, tail = sse(self._chunk({"content": "\0"}, None)).partition(b'"\\u0000"')
                self._content_event = (head, tail)
            head, tail = self._content_event
            return [head + go_json_bytes(piece.text) + tail]
        delta: dict[str, Any] = {} if self.role_sent else {"role": "assistant"}
        self.role_sent = True
        delta["content"] = piece.text if piece.kind == "content" else ""
        if piece.kind == "thinking":
            delta["reasoning"] = piece.text
        if piece.tool is not None:
            delta["tool_calls"] = [openai_tool(piece.tool)]
        return [sse(self._chunk(delta, None))]

    def _finish(self, result: Result) -> str:
        reason = result.plan.done_reason
        return "tool_calls" if reason == "stop" and any(p.tool for p in result.sent) else reason

    def done(self, result: Result) -> list[bytes]:
        """Finish chunk, optional usage chunk, [DONE]."""
        events = [sse(self._chunk({}, self._finish(result)))]
        if self.with_usage:
            events.append(
                sse(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "system_fingerprint": "fp_ollama",
                        "choices": [],
                        "usage": usage(result.plan.prompt_tokens, result.eval_count),
                    }
                )
            )
        return [*events, DONE]

    def aggregate(self, result: Result) -> Any:
        """chat.completion object."""
        message: dict[str, Any] = {"role": "assistant", "content": result.text()}
        if result.text("thinking"):
            message["reasoning"] = result.text("thinking")
        calls = [openai_tool(p.tool) for p in result.sent if p.tool]
        if calls:
            message["tool_calls"] = calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish(result)}],
            "usage": usage(result.plan.prompt_tokens, result.eval_count),
        }

    def midstream_error(self) -> list[bytes]:
        """The native error line re-encoded as an empty chunk; no finish, no [DONE]."""
        return [sse(self._chunk({"content": ""}, None, model=""))]


class CompletionFormatter(_Base):
    """text_completion objects."""

    def __init__(self, model: str, with_usage: bool) -> None:
        super().__init__("cmpl", model, with_usage)

    def _chunk(self, text: str, finish: str | None, model: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "choices": [{"text": text, "index": 0, "finish_reason": finish}],
            "model": self.model if model is None else model,
            "system_fingerprint": "fp_ollama",
        }
        if self.with_usage:
            obj["usage"] = usage(0, 0)
        return obj

    def piece(self, piece: Piece, created_ns: int) -> list[bytes]:
        """One chunk per native chunk (thinking text is not exposed)."""
        return [sse(self._chunk(piece.text if piece.kind == "content" else "", None))]

    def done(self, result: Result) -> list[bytes]:
        """Final chunk, optional usage chunk, [DONE]."""
        events = [sse(self._chunk("", result.plan.done_reason))]
        if self.with_usage:
            events.append(
                sse(
                    {
                        "id": self.id,
                        "object": "text_completion",
                        "created": self.created,
                        "choices": [],
                        "model": self.model,
                        "system_fingerprint": "fp_ollama",
                        "usage": usage(result.plan.prompt_tokens, result.eval_count),
                    }
                )
            )
        return [*events, DONE]

    def aggregate(self, result: Result) -> Any:
        """text_completion object."""
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_ollama",
            "choices": [
                {"text": result.text(), "index": 0, "finish_reason": result.plan.done_reason}
            ],
            "usage": usage(result.plan.prompt_tokens, result.eval_count),
        }

    def midstream_error(self) -> list[bytes]:
        """Empty chunk with model "", then the stream just ends."""
        return [sse(self._chunk("", None, model=""))]
