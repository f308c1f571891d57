"""Native /api/generate and /api/chat, acting on the body as Go decodes it (structs.py)."""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request

from . import structs
from .generation import Formatter, Result, created_at, run_generation
from .godecode import Raw
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
from .records import note
from .schedule import scheduled
from .state import State
from .util import go_json_bytes, rfc3339_utc
from .web import (
    CT_JSON,
    CT_JSON_UTF8,
    CT_NDJSON,
    ApiError,
    decode_request,
    json_response,
    native_error,
)


def run_options(request: Request, options: dict[str, Any] | None) -> dict[str, Any]:
    """api.Options.FromMap of the request options (500 on a wrongly typed option, as Ollama).

    Records the options map and the effective num_predict in the request's decoded view.
    """
    try:
        converted = structs.options_from_map(options)
    except structs.OptionError as err:
        raise ApiError(500, str(err)) from err
    cap = converted.get("num_predict")
    note(request, options=options, num_predict=cap if isinstance(cap, int) and cap > 0 else None)
    return converted


def cap_of(options: dict[str, Any]) -> int | None:
    """num_predict when it limits the generation (> 0), else None."""
    cap = options.get("num_predict")
    return cap if isinstance(cap, int) and cap > 0 else None


def check_common(body: dict[str, Any]) -> None:
    """Validation shared by generate and chat."""
    if not 0 <= body.get("top_logprobs", 0) <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")


def resolve_think(value: Any, spec: ModelSpec, model: str, relax: bool = False) -> bool:
    """Whether to emit thinking; 400 if requested from a non-thinking model (unless relaxed)."""
    if value is None:
        return spec.supports("thinking")
    wanted = value is True or value in structs.THINK_LEVELS
    if wanted and not spec.supports("thinking"):
        if relax:  # /v1/messages sets relax_thinking: think becomes nil
            return False
        raise ApiError(400, f'"{model}" does not support thinking')
    return wanted


def context_length(spec: ModelSpec, options: dict[str, Any]) -> int:
    """num_ctx or the default 4096, bounded by the model."""
    num_ctx = options.get("num_ctx")
    value = num_ctx if isinstance(num_ctx, int) and num_ctx > 0 else 4096
    return min(value, spec.context_length)


def format_of(raw: Any) -> Any:
    """The `format` RawMessage as a value ("json", a schema object, or None)."""
    return raw.value() if isinstance(raw, Raw) else raw


def native_tool(call: ToolCall) -> dict[str, Any]:
    """Native tool call object."""
    return {
        "id": call.id,
        "function": {"index": call.index, "name": call.name, "arguments": call.arguments},
    }


def lookup(state: State, model: str) -> ModelSpec:
    """The installed model, or generate/chat's 404."""
    spec = state.lookup(model)
    if spec is None:
        raise ApiError(404, f"model '{model}' not found")
    return spec


def check_tools(spec: ModelSpec, model: str, tools: list[Any]) -> None:
    """400 when tools are given to a model without the tools capability."""
    if tools and not spec.supports("tools"):
        ref = parse_name(model)
        raise ApiError(400, f"{ref.full.lower() if ref else model} does not support tools")


async def load_or_unload(
    request: Request, state: State, spec: ModelSpec, model: str, keep_alive: int | None, chat: bool
) -> HTTPResponse:
    """Empty prompt/messages: load (or unload with keep_alive 0) and answer once."""
    async with scheduled(request, state) as fault:
        if fault is not None:
            return native_error(*fault)
    state.touch(spec, keep_alive, context_length(spec, {}))
    reason = "unload" if keep_alive == 0 else "load"
    note(request, outcome=reason, done_reason=reason, generated=0)
    body: dict[str, Any] = {"model": model, "created_at": rfc3339_utc()}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    body["done"] = True
    body["done_reason"] = reason
    return json_response(body)


async def _load_through(
    request: Request,
    state: State,
    spec: ModelSpec,
    model: str,
    keep_alive: int | None,
    fmt: Formatter,
    body: dict[str, Any],
) -> HTTPResponse | None:
    """The load/unload answer written through a /v1 writer (an empty, metric-less result)."""
    state.touch(spec, keep_alive, context_length(spec, {}))
    empty = build_plan("", 0, 0, None)
    empty.reason = "unload" if keep_alive == 0 else "load"
    return await run_generation(request, state, model, empty, fmt, body.get("stream") is not False)


class NativeFormatter:
    """NDJSON chunks and aggregated objects for generate/chat."""

    stream_content_type = CT_NDJSON
    aggregate_content_type = CT_JSON_UTF8
    aggregate_newline = False
    stream_headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, model: str, chat: bool, with_context: bool) -> None:
        self.model = model
        self.chat = chat
        self.with_context = with_context
        head = go_json_bytes({"model": model})[:-1] + b',"created_at":"'
        field = b'","message":{"role":"assistant","content":' if chat else b'","response":'
        self._content_line = (head, field, b'},"done":false}\n' if chat else b',"done":false}\n')

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
        if piece.kind == "content" and piece.tool is None:  # the common case, built directly
            head, field, tail = self._content_line
            text = go_json_bytes(piece.text)
            return [head + created_at(created_ns).encode() + field + text + tail]
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


def _record_common(request: Request, body: dict[str, Any], model: str) -> int | None:
    keep_alive: int | None = body.get("keep_alive")
    note(request, model=model, keep_alive_ns=keep_alive, stream=body.get("stream") is not False)
    return keep_alive


async def generate(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/generate."""
    return await generate_decoded(request, state, decode_request(request, structs.GENERATE))


async def generate_decoded(
    request: Request, state: State, body: dict[str, Any], fmt: Formatter | None = None
) -> HTTPResponse | None:
    """GenerateHandler on a decoded api.GenerateRequest (None `fmt`: native NDJSON)."""
    model: str = body.get("model", "")
    keep_alive = _record_common(request, body, model)
    if not model:
        raise ApiError(404, "model '' not found")
    raw = body.get("raw", False)
    if raw and (body.get("template") or body.get("system") or body.get("context")):
        raise ApiError(400, "raw mode does not support template, system, or context")
    check_common(body)
    spec = lookup(state, model)
    if not spec.supports("completion"):
        raise ApiError(400, f'"{model}" does not support generate')
    think = resolve_think(body.get("think"), spec, model)
    options = run_options(request, body.get("options"))
    prompt: str = body.get("prompt", "")
    images = body.get("images") or []
    if not prompt and not images:
        if fmt is None:
            return await load_or_unload(request, state, spec, model, keep_alive, chat=False)
        return await _load_through(request, state, spec, model, keep_alive, fmt, body)
    state.touch(spec, keep_alive, context_length(spec, options))
    system, suffix = body.get("system", ""), body.get("suffix", "")
    tokens = prompt_tokens_generate(prompt, system, suffix, raw, body.get("context"), len(images))
    plan = build_plan(
        f"{system}\n{prompt}\n{suffix}",
        tokens,
        state.config.tokens,
        cap_of(options),
        think=think,
        fmt=format_of(body.get("format")),
    )
    writer = fmt or NativeFormatter(model, chat=False, with_context=not raw)
    return await run_generation(
        request, state, model, plan, writer, body.get("stream") is not False
    )


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Decoded api.Message items (role already lower-cased by Message.UnmarshalJSON)."""
    return [m for m in body.get("messages") or [] if isinstance(m, dict)]


async def chat(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/chat."""
    return await chat_decoded(request, state, decode_request(request, structs.CHAT))


async def chat_decoded(
    request: Request,
    state: State,
    body: dict[str, Any],
    fmt: Formatter | None = None,
    relax_thinking: bool = False,
) -> HTTPResponse | None:
    """ChatHandler on a decoded api.ChatRequest; `fmt` writes the answer (None: native NDJSON).

    The /v1/messages and /v1/responses middlewares call this with the request they built.
    """
    model: str = body.get("model", "")
    keep_alive = _record_common(request, body, model)
    if not model:
        raise ApiError(400, "model is required")
    check_common(body)
    spec = lookup(state, model)
    if not spec.supports("completion"):
        raise ApiError(400, f'"{model}" does not support chat')
    tools = body.get("tools") or []
    check_tools(spec, model, tools)
    think = resolve_think(body.get("think"), spec, model, relax_thinking)
    options = run_options(request, body.get("options"))
    messages = chat_messages(body)
    stream = body.get("stream") is not False
    if not messages:
        if fmt is None:
            return await load_or_unload(request, state, spec, model, keep_alive, chat=True)
        return await _load_through(request, state, spec, model, keep_alive, fmt, body)
    state.touch(spec, keep_alive, context_length(spec, options))
    call_tools = tools if messages[-1].get("role") == "user" else None
    plan = build_plan(
        chat_seed(messages),
        prompt_tokens_chat(messages, tools or None),
        state.config.tokens,
        cap_of(options),
        think=think,
        tools=call_tools,
        fmt=format_of(body.get("format")),
    )
    writer = fmt or NativeFormatter(model, chat=True, with_context=False)
    return await run_generation(request, state, model, plan, writer, stream)
