"""Anthropic Messages answers: the response object, the SSE events, the input-token estimate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sanic import HTTPResponse

from .generation import Result
from .godecode import Raw
from .plan import Piece, ToolCall
from .util import go_json, go_json_bytes
from .web import CT_JSON, CT_SSE, ApiError, anthropic_error

STREAM_HEADERS: tuple[tuple[str, str], ...] = (
    ("cache-control", "no-cache"),
    ("connection", "keep-alive"),
)


def stop_reason(done_reason: str, tool_calls: bool) -> str:
    """mapStopReason: end_turn, max_tokens, tool_use, stop_sequence (or "" when none)."""
    if tool_calls:
        return "tool_use"
    return {"stop": "end_turn", "length": "max_tokens", "": ""}.get(done_reason, "stop_sequence")


def _block_length(block: dict[str, Any]) -> int:
    total = len((block.get("text") or "").encode()) + len((block.get("thinking") or "").encode())
    if block.get("type") in ("tool_use", "tool_result"):
        total += len(
            go_json({k: v for k, v in block.items() if v not in (None, "", False)}).encode()
        )
    return total


def _any_length(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content.encode())
    if isinstance(content, list):
        return sum(_block_length(b) for b in content if isinstance(b, dict))
    return len(go_json(content).encode())


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """anthropic.EstimateInputTokens: (bytes of system, roles, text and tools) / 4, at least 1."""
    total = _any_length(body.get("system"))
    for message in body.get("messages") or []:
        total += len(str(message.get("role", "")).encode()) + _any_length(message.get("content"))
    for tool in body.get("tools") or []:
        schema = tool.get("input_schema")
        schema_len = len(go_json(schema.value()).encode()) if isinstance(schema, Raw) else 0
        total += len(tool.get("name", "").encode()) + len(tool.get("description", "").encode())
        total += schema_len
    tokens = total // 4
    if tokens == 0 and (body.get("messages") or body.get("system") is not None):
        tokens = 1
    return tokens


def sse_event(name: str, data: Any) -> bytes:
    """writeSSE: `event: X\\ndata: {…}\\n\\n`."""
    return b"event: " + name.encode() + b"\ndata: " + go_json_bytes(data) + b"\n\n"


def _tool_use(call: ToolCall, with_input: bool = True) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name}
    block["input"] = call.arguments if with_input else {}
    return block


class AnthropicFormatter:
    """StreamConverter / ToMessagesResponse of Ollama's Anthropic middleware."""

    stream_content_type = CT_SSE
    aggregate_content_type = CT_JSON
    aggregate_newline = True
    stream_headers: tuple[tuple[str, str], ...] = STREAM_HEADERS

    def __init__(self, msg_id: str, model: str, estimate: int, ping: bool = False) -> None:
        self.id = msg_id
        self.model = model
        self.estimate = estimate
        self.ping = ping
        self.started = False
        self.index = 0
        self.thinking_started = self.thinking_done = self.text_started = False
        self.tool_sent = False

    @contextmanager
    def handler_phase(self) -> Iterator[None]:
        """Errors from the chat handler go through AnthropicWriter.writeError: application/json."""
        try:
            yield
        except ApiError as err:
            raise ApiError(err.status, err.message, CT_JSON) from err

    def _start(self, input_tokens: int) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "usage": {"input_tokens": input_tokens or self.estimate, "output_tokens": 0},
        }
        events = [sse_event("message_start", {"type": "message_start", "message": message})]
        if self.ping:
            events.append(sse_event("ping", {"type": "ping"}))
        return events

    def _block(self, name: str, **data: Any) -> bytes:
        return sse_event(name, {"type": name, "index": self.index, **data})

    def _close(self) -> list[bytes]:
        event = self._block("content_block_stop")
        self.index += 1
        return [event]

    def piece(self, piece: Piece, created_ns: int) -> list[bytes]:
        """StreamConverter.Process for one native chunk."""
        events = self._start(0)
        if piece.kind == "thinking" and not self.thinking_done:
            if self.text_started:
                events += self._close()
                self.text_started = False
            if not self.thinking_started:
                self.thinking_started = True
                block = {"type": "thinking", "thinking": ""}
                events.append(self._block("content_block_start", content_block=block))
            delta = {"type": "thinking_delta", "thinking": piece.text}
            events.append(self._block("content_block_delta", delta=delta))
        elif piece.kind == "content" and piece.text:
            if self.thinking_started and not self.thinking_done:
                self.thinking_done = True
                events += self._close()
            if not self.text_started:
                self.text_started = True
                block = {"type": "text", "text": ""}
                events.append(self._block("content_block_start", content_block=block))
            events.append(
                self._block("content_block_delta", delta={"type": "text_delta", "text": piece.text})
            )
        elif piece.tool is not None:
            if self.thinking_started and not self.thinking_done:
                self.thinking_done = True
                events += self._close()
            if self.text_started:
                events += self._close()
                self.text_started = False
            block = _tool_use(piece.tool, with_input=False)
            events.append(self._block("content_block_start", content_block=block))
            delta = {"type": "input_json_delta", "partial_json": go_json(piece.tool.arguments)}
            events.append(self._block("content_block_delta", delta=delta))
            events += self._close()
            self.tool_sent = True
        return events

    def done(self, result: Result) -> list[bytes]:
        """The closing block stop, message_delta with the final usage, message_stop."""
        events = self._start(result.plan.prompt_tokens)
        if self.text_started or (self.thinking_started and not self.thinking_done):
            events.append(self._block("content_block_stop"))
        delta: dict[str, Any] = {}
        reason = stop_reason(result.plan.done_reason, self.tool_sent)
        if reason:
            delta["stop_reason"] = reason
        usage = {"input_tokens": result.plan.prompt_tokens, "output_tokens": result.eval_count}
        events.append(
            sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        events.append(sse_event("message_stop", {"type": "message_stop"}))
        return events

    def aggregate(self, result: Result) -> Any:
        """ToMessagesResponse of the aggregated chat answer."""
        content: list[dict[str, Any]] = []
        if result.text("thinking"):
            content.append({"type": "thinking", "thinking": result.text("thinking")})
        if result.text():
            content.append({"type": "text", "text": result.text()})
        calls = [p.tool for p in result.sent if p.tool is not None]
        content += [_tool_use(call) for call in calls]
        response: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content or None,
        }
        reason = stop_reason(result.plan.done_reason, bool(calls))
        if reason:
            response["stop_reason"] = reason
        response["usage"] = {
            "input_tokens": result.plan.prompt_tokens,
            "output_tokens": result.eval_count,
        }
        return response

    def midstream_error(self) -> list[bytes]:
        """The native error line decodes as an empty chunk: at most a message_start, then EOF."""
        return self._start(0)

    def error(self, status: int, message: str, streaming: bool) -> HTTPResponse:
        """AnthropicWriter.writeError: Anthropic's error object, application/json."""
        return anthropic_error(status, message, CT_JSON)
