"""OpenAI-compatible /v1 endpoints: chat/completions, completions, embeddings, models."""

from __future__ import annotations

import base64
import random
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sanic import HTTPResponse, Request

from .embeddings import embed_core, not_found
from .generation import Result, run_generation
from .models import owner, parse_name
from .native import check_common, context_length, options_of, resolve_think
from .plan import (
    Piece,
    ToolCall,
    build_plan,
    chat_seed,
    message_text,
    prompt_tokens_chat,
    prompt_tokens_generate,
)
from .state import State
from .util import go_json, go_json_bytes
from .web import CT_JSON, CT_SSE, ApiError, check_types, openai_error, parse_json, raw, send_json

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "ultra", "max")
DONE = b"data: [DONE]\n\n"


@contextmanager
def handler_phase() -> Iterator[None]:
    """Errors raised past the middleware are written by Ollama's writer: application/json."""
    try:
        yield
    except ApiError as err:
        raise ApiError(err.status, err.message, CT_JSON) from err


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


def include_usage(body: dict[str, Any]) -> bool:
    """stream_options.include_usage."""
    opts = body.get("stream_options")
    return isinstance(opts, dict) and opts.get("include_usage") is True


class _Base:
    stream_content_type = CT_SSE
    aggregate_content_type = CT_JSON
    aggregate_newline = True

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


def _cap(body: dict[str, Any]) -> Any:
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return body[key]
    return None


def _think(body: dict[str, Any]) -> bool | None:
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    effort = effort if effort is not None else body.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in EFFORTS:
        raise ApiError(
            400, f"invalid reasoning value: '{effort}' (must be one of {', '.join(EFFORTS)})"
        )
    return bool(effort != "none")


def _native_messages(messages: list[Any]) -> list[dict[str, Any]]:
    out = []
    for msg in messages:
        if not isinstance(msg, dict):
            raise ApiError(400, "invalid message format")
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                url = part.get("image_url") if isinstance(part, dict) else None
                url = url.get("url") if isinstance(url, dict) else url
                if isinstance(url, str) and not url.startswith("data:"):
                    raise ApiError(
                        400,
                        "image URLs are not currently supported, please use "
                        "base64 encoded data instead",
                    )
        out.append({"role": str(msg.get("role") or "").lower(), "content": message_text(content)})
    return out


def _lookup(state: State, model: str) -> Any:
    spec = state.lookup(model)
    if spec is None:
        raise ApiError(404, f"model '{model}' not found")
    return spec


async def chat_completions(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/chat/completions."""
    body = parse_json(request, "openai.ChatCompletionRequest", empty_message="EOF")
    check_types(
        body,
        "openai.ChatCompletionRequest",
        {
            "model": ((str,), "string"),
            "messages": ((list,), "[]openai.Message"),
            "stream": ((bool,), "bool"),
        },
    )
    if not body.get("messages"):
        raise ApiError(400, "[] is too short - 'messages'")
    messages = _native_messages(body["messages"])
    think = _think(body)
    with handler_phase():
        model = body.get("model") or ""
        if not model:
            raise ApiError(400, "model is required")
        check_common(body)
        spec = _lookup(state, model)
        tools = body.get("tools") or []
        if tools and not spec.supports("tools"):
            ref = parse_name(model)
            raise ApiError(400, f"{ref.full.lower() if ref else model} does not support tools")
        think_on = resolve_think({"think": think}, spec, model)
    state.touch(spec, None, context_length(spec, {}))
    call_tools = tools if messages[-1]["role"] == "user" else None
    plan = build_plan(
        chat_seed(messages),
        prompt_tokens_chat(messages, tools or None),
        state.config.tokens,
        _cap(body),
        think=think_on,
        tools=call_tools,
        fmt=_format(body),
    )
    fmt = ChatFormatter(model, include_usage(body))
    return await run_generation(request, state, model, plan, fmt, body.get("stream") is True)


def _format(body: dict[str, Any]) -> Any:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return "json"
    schema = fmt.get("json_schema")
    return schema.get("schema") or "json" if isinstance(schema, dict) else None


async def completions(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/completions."""
    body = parse_json(request, "openai.CompletionRequest", empty_message="EOF")
    check_types(
        body,
        "openai.CompletionRequest",
        {"model": ((str,), "string"), "prompt": ((str,), "string"), "stream": ((bool,), "bool")},
    )
    with handler_phase():
        model = body.get("model") or ""
        if not model:
            raise ApiError(404, "model '' not found")
        spec = _lookup(state, model)
        if not spec.supports("completion"):
            raise ApiError(400, f'"{model}" does not support generate')
    prompt, suffix = body.get("prompt") or "", body.get("suffix") or ""
    state.touch(spec, None, context_length(spec, options_of({})))
    plan = build_plan(
        f"\n{prompt}\n{suffix}",
        prompt_tokens_generate(prompt, suffix=suffix),
        state.config.tokens,
        body.get("max_tokens"),
    )
    fmt = CompletionFormatter(model, include_usage(body))
    return await run_generation(request, state, model, plan, fmt, body.get("stream") is True)


def _b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


async def embeddings(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/embeddings."""
    body = parse_json(request, "openai.EmbedRequest", empty_message="EOF")
    raw_input = body.get("input")
    inputs = [""] if raw_input == "" else raw_input
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise ApiError(400, "invalid input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(
            400,
            f"Invalid value for 'encoding_format' = {encoding}. "
            "Supported values: ['float', 'base64'].",
        )
    with handler_phase():
        model = body.get("model") or ""
        if not model:
            raise ApiError(404, "model '' not found")
        spec = state.lookup(model)
        if spec is None:
            raise not_found(model)
        vectors, tokens, _ = await embed_core(request, state, spec, model, inputs, body)
    data = [
        {"object": "embedding", "embedding": _b64(v) if encoding == "base64" else v, "index": i}
        for i, v in enumerate(vectors)
    ]
    out = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return await send_json(request, out, 200, CT_JSON, newline=True)


async def list_models(request: Request, state: State) -> HTTPResponse | None:
    """GET /v1/models (data is null when nothing is installed)."""
    specs = sorted(state.installed.values(), key=lambda s: s.modified_ns, reverse=True)
    data = [
        {
            "id": s.name,
            "object": "model",
            "created": s.modified_ns // 1_000_000_000,
            "owned_by": owner(s.name),
        }
        for s in specs
    ]
    return raw(go_json_bytes({"object": "list", "data": data or None}, newline=True), 200, CT_JSON)


async def retrieve_model(request: Request, state: State, model: str) -> HTTPResponse:
    """GET /v1/models/:model."""
    spec = state.lookup(model)
    if spec is None:
        ref = parse_name(model)
        raise ApiError(404, f"model '{ref.short if ref else model}' not found", CT_JSON)
    obj = {
        "id": model,
        "object": "model",
        "created": spec.modified_ns // 1_000_000_000,
        "owned_by": owner(spec.name),
    }
    return raw(go_json_bytes(obj, newline=True), 200, CT_JSON)
