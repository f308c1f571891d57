"""OpenAI-compatible /v1 endpoints: the middlewares' conversions, then the native handlers.

As in Ollama (middleware/openai.go, openai/openai.go): the body is decoded into the openai
struct, converted into an api.ChatRequest / api.GenerateRequest (temperature and top_p default
to 1.0, `max_tokens` becomes num_predict, `max_completion_tokens` is not a field and is ignored),
and the native handler runs it. Errors before the handler use `application/json; charset=utf-8`,
errors from the handler `application/json`.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sanic import HTTPResponse, Request

from . import structs_openai
from .embeddings import embed_core, not_found
from .godecode import Raw
from .models import owner, parse_name
from .native import chat_decoded, generate_decoded
from .openai_format import ChatFormatter, CompletionFormatter
from .records import note
from .state import State
from .util import go_json_bytes
from .web import CT_JSON, ApiError, decode_request, raw, send_json

IMAGE_PREFIXES = tuple(f"data:image/{t};base64," for t in ("jpeg", "jpg", "png", "webp"))


@contextmanager
def handler_phase() -> Iterator[None]:
    """Errors raised past the middleware are written by Ollama's writer: application/json."""
    try:
        yield
    except ApiError as err:
        raise ApiError(err.status, err.message, CT_JSON) from err


def think_from_effort(effort: str) -> bool | str | None:
    """thinkFromReasoningEffort (400 on an unknown effort)."""
    if effort == "":
        return None
    if effort == "none":
        return False
    if effort == "minimal":
        return "low"
    if effort in ("low", "medium", "high", "max"):
        return effort
    if effort in ("xhigh", "ultra"):
        return "max"
    raise ApiError(
        400,
        f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", "high", '
        '"xhigh", "ultra", "max", or "none")',
    )


def decode_image_url(url: str) -> bytes:
    """decodeImageURL: data URIs only."""
    if url.startswith(("http://", "https://")):
        raise ApiError(
            400, "image URLs are not currently supported, please use base64 encoded data instead"
        )
    if url.startswith("data:;base64,"):
        data = url.removeprefix("data:;base64,")
    elif url.startswith(IMAGE_PREFIXES):
        data = url.split(",", 1)[1]
    else:
        raise ApiError(400, "invalid image input")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, "invalid image input") from err


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for call in calls:
        function = call.get("function", {})
        try:
            arguments = json.loads(function.get("arguments", ""))
        except ValueError as err:
            raise ApiError(400, "invalid tool call arguments") from err
        if not isinstance(arguments, dict):
            raise ApiError(400, "invalid tool call arguments")
        out.append(
            {
                "id": call.get("id", ""),
                "function": {"name": function.get("name", ""), "arguments": arguments},
            }
        )
    return out


def _go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "float64"
    return "map[string]interface {}" if isinstance(value, dict) else type(value).__name__


def native_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FromChatRequest's message conversion (a text part becomes a message of its own)."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        role, content = msg.get("role", ""), msg.get("content")
        calls = msg.get("tool_calls")
        if isinstance(content, str):
            out.append({"role": role, "content": content, "tool_calls": _tool_calls(calls or [])})
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    raise ApiError(400, "invalid message format")
                if part.get("type") == "text":
                    if not isinstance(part.get("text"), str):
                        raise ApiError(400, "invalid message format")
                    out.append({"role": role, "content": part["text"]})
                elif part.get("type") == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    if not isinstance(url, str):
                        raise ApiError(400, "invalid message format")
                    out.append({"role": role, "content": "", "images": [decode_image_url(url)]})
                elif part.get("type") == "input_audio":
                    out.append({"role": role, "content": "", "images": [b"audio"]})
                else:
                    raise ApiError(400, "invalid message format")
            if out and calls:
                out[-1]["tool_calls"] = _tool_calls(calls)
        elif calls is None:
            raise ApiError(400, f"invalid message content type: {_go_type(content)}")
        else:
            out.append({"role": role, "content": "", "tool_calls": _tool_calls(calls)})
    for message in out:
        message["role"] = message["role"].lower()  # Message.UnmarshalJSON on the re-decode
    return out


def _stop(value: Any, strict: bool) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if strict and not all(isinstance(s, str) for s in value):
            bad = next(s for s in value if not isinstance(s, str))
            raise ApiError(400, f"invalid type for 'stop' field: {_go_type(bad)}")
        return [s for s in value if isinstance(s, str)]
    return None


def _options(body: dict[str, Any], strict_stop: bool) -> dict[str, Any]:
    """stop, num_predict (from max_tokens) and temperature (default 1.0), as both converters."""
    options: dict[str, Any] = {}
    stop = _stop(body.get("stop"), strict_stop)
    if stop is not None:
        options["stop"] = stop
    if "max_tokens" in body:
        options["num_predict"] = body["max_tokens"]
    options["temperature"] = body.get("temperature", 1.0)
    return options


def _format(body: dict[str, Any]) -> Raw | None:
    response_format = body.get("response_format") or {}
    kind = str(response_format.get("type", "")).strip().lower()
    if kind == "json_object":
        return Raw("json")
    schema = response_format.get("json_schema")
    if kind == "json_schema" and schema is not None:
        raw_schema = schema.get("schema")
        return raw_schema if isinstance(raw_schema, Raw) else None
    return None


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """openai.FromChatRequest: the api.ChatRequest Ollama's ChatHandler then decodes."""
    options = _options(body, strict_stop=False)
    for key in ("seed", "frequency_penalty", "presence_penalty"):
        if key in body:
            options[key] = body[key]
    options["top_p"] = body.get("top_p", 1.0)
    reasoning = body.get("reasoning")
    effort = (
        reasoning.get("effort", "") if reasoning is not None else body.get("reasoning_effort", "")
    )
    native: dict[str, Any] = {
        "model": body.get("model", ""),
        "messages": native_messages(body.get("messages") or []),
        "options": options,
        "stream": body.get("stream", False),
        "tools": body.get("tools") or [],
        "logprobs": body.get("logprobs", False),
        "top_logprobs": body.get("top_logprobs", 0),
    }
    think = think_from_effort(effort)
    if think is not None:
        native["think"] = think
    fmt = _format(body)
    if fmt is not None:
        native["format"] = fmt
    return native


def include_usage(body: dict[str, Any]) -> bool:
    """stream_options.include_usage."""
    return bool((body.get("stream_options") or {}).get("include_usage"))


async def chat_completions(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/chat/completions."""
    body = decode_request(request, structs_openai.CHAT_COMPLETION, empty_message="EOF")
    note(request, model=body.get("model", ""), stream=body.get("stream", False))
    if not body.get("messages"):
        raise ApiError(400, "[] is too short - 'messages'")
    native = chat_request(body)
    fmt = ChatFormatter(native["model"], include_usage(body))
    with handler_phase():
        return await chat_decoded(request, state, native, fmt)


def generate_request(body: dict[str, Any]) -> dict[str, Any]:
    """openai.FromCompleteRequest: the api.GenerateRequest GenerateHandler then decodes."""
    options = _options(body, strict_stop=True)
    if "seed" in body:
        options["seed"] = body["seed"]
    options["frequency_penalty"] = body.get("frequency_penalty", 0.0)
    options["presence_penalty"] = body.get("presence_penalty", 0.0)
    options["top_p"] = body.get("top_p") or 1.0
    return {
        "model": body.get("model", ""),
        "prompt": body.get("prompt", ""),
        "suffix": body.get("suffix", ""),
        "options": options,
        "stream": body.get("stream", False),
    }


async def completions(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/completions."""
    body = decode_request(request, structs_openai.COMPLETION, empty_message="EOF")
    note(request, model=body.get("model", ""), stream=body.get("stream", False))
    native = generate_request(body)
    fmt = CompletionFormatter(native["model"], include_usage(body))
    with handler_phase():
        return await generate_decoded(request, state, native, fmt)


def _b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


async def embeddings(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/embeddings."""
    body = decode_request(request, structs_openai.EMBED, empty_message="EOF")
    model: str = body.get("model", "")
    note(request, model=model, stream=False)
    encoding = body.get("encoding_format", "")
    if encoding and encoding.lower() not in ("float", "base64"):
        raise ApiError(
            400,
            f"Invalid value for 'encoding_format' = {encoding}. "
            "Supported values: ['float', 'base64'].",
        )
    inputs = body.get("input")
    inputs = [""] if inputs == "" else [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs:
        raise ApiError(400, "invalid input")
    with handler_phase():
        if not all(isinstance(i, str) for i in inputs):
            raise ApiError(400, "invalid input type")
        if not model:
            raise ApiError(404, "model '' not found")
        spec = state.lookup(model)
        if spec is None:
            raise not_found(model)
        native = {"model": model, "dimensions": body.get("dimensions", 0)}
        vectors, tokens, _ = await embed_core(request, state, spec, model, inputs, native)
    as_b64 = encoding.lower() == "base64"
    data = [
        {"object": "embedding", "embedding": _b64(v) if as_b64 else v, "index": i}
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
