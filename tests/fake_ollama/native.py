"""Native /api/generate and /api/chat."""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request

from .generation import Result, created_at, run_generation, schedule
from .models import ModelSpec, parse_name
from .plan import (
    Piece,
    ToolCall,
    build_plan,
    chat_seed,
    context_ids,
    prompt_tokens_chat,
    prompt_tokens_generate,
)
from .state import State
from .util import DurationError, go_json_bytes, go_type_name, parse_keep_alive, rfc3339_utc
from .web import (
    CT_JSON,
    CT_JSON_UTF8,
    CT_NDJSON,
    ApiError,
    check_types,
    json_response,
    native_error,
    parse_json,
)

STR, BOOL = ((str,), "string"), ((bool,), "bool")
OPTIONS = ((dict,), "map[string]interface {}")
GENERATE_TYPES = {
    "model": STR,
    "prompt": STR,
    "system": STR,
    "suffix": STR,
    "template": STR,
    "stream": BOOL,
    "raw": BOOL,
    "context": ((list,), "[]int"),
    "images": ((list,), "[]api.ImageData"),
    "options": OPTIONS,
}
CHAT_TYPES = {
    "model": STR,
    "stream": BOOL,
    "messages": ((list,), "[]api.Message"),
    "tools": ((list,), "api.Tools"),
    "options": OPTIONS,
}


def keep_alive_of(body: dict[str, Any]) -> int | None:
    """Parsed keep_alive (400 on unsupported types)."""
    try:
        return parse_keep_alive(body.get("keep_alive"))
    except DurationError as err:
        raise ApiError(400, str(err)) from err


def options_of(body: dict[str, Any]) -> dict[str, Any]:
    """The `options` map (empty when absent)."""
    options = body.get("options")
    return options if isinstance(options, dict) else {}


def check_common(body: dict[str, Any]) -> None:
    """Validation shared by generate and chat."""
    top = body.get("top_logprobs")
    if isinstance(top, int) and not 0 <= top <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")


def resolve_think(body: dict[str, Any], spec: ModelSpec, model: str) -> bool:
    """Whether to emit thinking; 400 if requested from a non-thinking model."""
    value = body.get("think")
    if value is None:
        return spec.supports("thinking")
    wanted = value is not False and value != "false"
    if wanted and not spec.supports("thinking"):
        raise ApiError(400, f'"{model}" does not support thinking')
    return wanted


def context_length(spec: ModelSpec, options: dict[str, Any]) -> int:
    """num_ctx or the default 4096, bounded by the model."""
    num_ctx = options.get("num_ctx")
    value = num_ctx if isinstance(num_ctx, int) and num_ctx > 0 else 4096
    return min(value, spec.context_length)


def native_tool(call: ToolCall) -> dict[str, Any]:
    """Native tool call object."""
    return {
        "id": call.id,
        "function": {"index": call.index, "name": call.name, "arguments": call.arguments},
    }


async def load_or_unload(
    request: Request, state: State, spec: ModelSpec, model: str, keep_alive: int | None, chat: bool
) -> HTTPResponse:
    """Empty prompt/messages: load (or unload with keep_alive 0) and answer once."""
    fault = await schedule(state, state.config)
    if fault is not None:
        return native_error(*fault)
    state.touch(spec, keep_alive, context_length(spec, options_of({})))
    body: dict[str, Any] = {"model": model, "created_at": rfc3339_utc()}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    body["done"] = True
    body["done_reason"] = "unload" if keep_alive == 0 else "load"
    return json_response(body)


class NativeFormatter:
    """NDJSON chunks and aggregated objects for generate/chat."""

    stream_content_type = CT_NDJSON
    aggregate_content_type = CT_JSON_UTF8
    aggregate_newline = False

    def __init__(self, model: str, chat: bool, with_context: bool) -> None:
        self.model = model
        self.chat = chat
        self.with_context = with_context

    def _body(self, ns: int, content: str, thinking: str, tools: list[ToolCall]) -> dict[str, Any]:
        obj: dict[str, Any] = {"model": self.model, "created_at": created_at(ns)}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if tools:
                message["tool_calls"] = [native_tool(t) for t in tools]
            obj["message"] = message
        else:
            obj["response"] = content
            if thinking:
                obj["thinking"] = thinking
        return obj

    def piece(self, piece: Piece, created_ns: int) -> list[bytes]:
        """One NDJSON line."""
        content = piece.text if piece.kind == "content" else ""
        thinking = piece.text if piece.kind == "thinking" else ""
        tools = [piece.tool] if piece.tool else []
        obj = self._body(created_ns, content, thinking, tools)
        obj["done"] = False
        if tools and not self.chat:
            obj["tool_calls"] = [native_tool(t) for t in tools]
        return [go_json_bytes(obj, newline=True)]

    def _final(self, result: Result, aggregate: bool) -> dict[str, Any]:
        content = result.text() if aggregate else ""
        thinking = result.text("thinking") if aggregate else ""
        tools = [p.tool for p in result.sent if p.tool] if aggregate and self.chat else []
        obj = self._body(result.created_ns, content, thinking, tools)
        obj["done"] = True
        obj["done_reason"] = result.plan.done_reason
        if self.with_context:
            count = result.plan.prompt_tokens + result.eval_count
            obj["context"] = context_ids(result.plan.seed, count)
        obj.update(result.metrics())
        return obj

    def done(self, result: Result) -> list[bytes]:
        """The closing `done:true` line."""
        return [go_json_bytes(self._final(result, aggregate=False), newline=True)]

    def aggregate(self, result: Result) -> Any:
        """stream=false: one object with the whole text."""
        return self._final(result, aggregate=True)

    def midstream_error(self) -> list[bytes]:
        """A bare error line; no done line follows."""
        return [
            go_json_bytes(
                {"error": "an error was encountered while running the model"}, newline=True
            )
        ]

    def error(self, status: int, message: str, streaming: bool) -> HTTPResponse:
        """Pre-stream error: application/json from streamResponse, charset from c.JSON."""
        return native_error(status, message, CT_JSON if streaming else CT_JSON_UTF8)


def _lookup(state: State, model: str) -> ModelSpec:
    spec = state.lookup(model)
    if spec is None:
        raise ApiError(404, f"model '{model}' not found")
    return spec


async def generate(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/generate."""
    body = parse_json(request, "api.GenerateRequest")
    check_types(body, "api.GenerateRequest", GENERATE_TYPES)
    keep_alive = keep_alive_of(body)
    model = body.get("model") or ""
    if not model:
        raise ApiError(404, "model '' not found")
    raw = bool(body.get("raw"))
    if raw and (body.get("template") or body.get("system") or body.get("context")):
        raise ApiError(400, "raw mode does not support template, system, or context")
    check_common(body)
    spec = _lookup(state, model)
    if not spec.supports("completion"):
        raise ApiError(400, f'"{model}" does not support generate')
    think = resolve_think(body, spec, model)
    prompt = body.get("prompt") or ""
    images = body.get("images") or []
    if not prompt and not images:
        return await load_or_unload(request, state, spec, model, keep_alive, chat=False)
    options = options_of(body)
    state.touch(spec, keep_alive, context_length(spec, options))
    tokens = prompt_tokens_generate(
        prompt,
        body.get("system") or "",
        body.get("suffix") or "",
        raw,
        body.get("context"),
        len(images),
    )
    seed = f"{body.get('system') or ''}\n{prompt}\n{body.get('suffix') or ''}"
    plan = build_plan(
        seed,
        tokens,
        state.config.tokens,
        options.get("num_predict"),
        think=think,
        fmt=body.get("format"),
    )
    fmt = NativeFormatter(model, chat=False, with_context=not raw)
    return await run_generation(request, state, model, plan, fmt, body.get("stream") is not False)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages") or []
    out = []
    for msg in messages:
        if not isinstance(msg, dict):
            raise ApiError(
                400,
                f"json: cannot unmarshal {go_type_name(msg)} into Go struct "
                "field ChatRequest.messages of type api.Message",
            )
        check_types(msg, "ChatRequest.messages", {"role": STR, "content": STR})
        out.append({**msg, "role": str(msg.get("role") or "").lower()})
    return out


async def chat(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/chat."""
    body = parse_json(request, "api.ChatRequest")
    check_types(body, "api.ChatRequest", CHAT_TYPES)
    keep_alive = keep_alive_of(body)
    model = body.get("model") or ""
    if not model:
        raise ApiError(400, "model is required")
    check_common(body)
    spec = _lookup(state, model)
    if not spec.supports("completion"):
        raise ApiError(400, f'"{model}" does not support chat')
    tools = body.get("tools") or []
    if tools and not spec.supports("tools"):
        ref = parse_name(model)
        raise ApiError(400, f"{ref.full.lower() if ref else model} does not support tools")
    think = resolve_think(body, spec, model)
    messages = _messages(body)
    if not messages:
        return await load_or_unload(request, state, spec, model, keep_alive, chat=True)
    options = options_of(body)
    state.touch(spec, keep_alive, context_length(spec, options))
    call_tools = tools if messages[-1]["role"] == "user" else None
    plan = build_plan(
        chat_seed(messages),
        prompt_tokens_chat(messages, tools or None),
        state.config.tokens,
        options.get("num_predict"),
        think=think,
        tools=call_tools,
        fmt=body.get("format"),
    )
    fmt = NativeFormatter(model, chat=True, with_context=False)
    return await run_generation(request, state, model, plan, fmt, body.get("stream") is not False)
