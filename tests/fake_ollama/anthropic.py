"""POST /v1/messages, the Anthropic Messages API (Ollama's middleware/anthropic.go at fb30760).

The middleware decodes an anthropic.MessagesRequest, insists on `model`, a positive
`max_tokens` and some `messages` (400 in Anthropic's error shape), converts it to an
api.ChatRequest (`max_tokens` -> num_predict) and runs the chat handler with thinking relaxed.
Answers: a Messages response with `usage`, or named SSE events message_start (usage estimate),
content_block_start/delta/stop, message_delta (final usage, stop_reason), message_stop. Ollama
sends no `ping`; the `anthropic_ping` knob adds one where api.anthropic.com sends it.
`/v1/messages/count_tokens` is not a route at this commit (gin's 404).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from sanic import HTTPResponse, Request

from . import structs_anthropic
from .anthropic_format import AnthropicFormatter, estimate_input_tokens
from .godecode import Raw
from .native import chat_decoded
from .records import note
from .state import State
from .web import ApiError, decode_request


def message_id() -> str:
    """anthropic.GenerateMessageID: msg_ + 24 hex digits."""
    return f"msg_{secrets.token_hex(12)}"


def _image(source: dict[str, Any] | None) -> bytes:
    if source is None:
        raise ApiError(400, "invalid image source")
    kind = source.get("type", "")
    if kind != "base64":
        raise ApiError(400, f"invalid image source type: {kind}. Only base64 images are supported.")
    try:
        return base64.b64decode(source.get("data", ""), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, f"invalid base64 image data: {err}") from err


def _tool_result(content: Any) -> tuple[str, list[bytes]]:
    if isinstance(content, str):
        return content, []
    text, images = "", []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text += block["text"]
        elif block.get("type") == "image":
            source = block.get("source")
            if not isinstance(source, dict):
                raise ApiError(400, "invalid tool_result image source")
            images.append(_image(source))
    return text, images


def convert_message(param: dict[str, Any]) -> list[dict[str, Any]]:
    """convertMessage: one Anthropic message as api.Message items."""
    role = str(param.get("role", "")).lower()
    text, images, calls, thinking = "", [], [], ""
    results: list[dict[str, Any]] = []
    for block in param.get("content") or []:
        kind = block.get("type", "")
        if kind == "text":
            text += block.get("text") or ""
        elif kind == "image":
            images.append(_image(block.get("source")))
        elif kind in ("tool_use", "server_tool_use"):
            if kind == "tool_use" and not block.get("id"):
                raise ApiError(400, "tool_use block missing required 'id' field")
            if kind == "tool_use" and not block.get("name"):
                raise ApiError(400, "tool_use block missing required 'name' field")
            function = {"name": block.get("name", ""), "arguments": block.get("input") or {}}
            calls.append({"id": block.get("id", ""), "function": function})
        elif kind in ("tool_result", "web_search_tool_result"):
            content, result_images = _tool_result(block.get("content"))
            result = {
                "role": "tool",
                "content": content,
                "tool_call_id": block.get("tool_use_id", ""),
            }
            if result_images:
                result["images"] = result_images
            results.append(result)
        elif kind == "thinking":
            thinking = block.get("thinking") or ""
    own = []
    if text or images or calls or thinking:
        own.append(
            {
                "role": role,
                "content": text,
                "images": images,
                "tool_calls": calls,
                "thinking": thinking,
            }
        )
    return [*results, *own] if role == "user" and results else [*own, *results]


def _system(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "".join(
            b["text"]
            for b in system
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    builtin = any(str(t.get("type", "")).startswith("web_search") for t in tools)
    for tool in tools:
        if str(tool.get("type", "")).startswith("web_search"):
            parameters: Any = {
                "type": "object",
                "required": ["query"],
                "properties": {"query": {"type": "string"}},
            }
            name = "web_search"
        elif builtin and tool.get("name") == "web_search":
            continue
        else:
            schema = tool.get("input_schema")
            parameters = schema.value() if isinstance(schema, Raw) else {}
            if not isinstance(parameters, dict):
                raise ApiError(
                    400,
                    f'invalid input_schema for tool "{tool.get("name", "")}": json: cannot '
                    "unmarshal into Go value of type api.ToolFunctionParameters",
                )
            name = tool.get("name", "")
        function = {
            "name": name,
            "description": tool.get("description", ""),
            "parameters": parameters,
        }
        out.append({"type": "function", "function": function})
    return out


def _think(body: dict[str, Any]) -> bool | str | None:
    thinking = (body.get("thinking") or {}).get("type")
    if thinking in ("enabled", "disabled"):
        return bool(thinking == "enabled")
    effort = str((body.get("output_config") or {}).get("effort", "")).strip().lower()
    effort = "high" if effort == "xhigh" else effort
    return effort if effort in ("high", "medium", "low", "max") else None


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """anthropic.FromMessagesRequest: the api.ChatRequest the chat handler then runs."""
    messages = []
    system = _system(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for param in body.get("messages") or []:
        messages += convert_message(param)
    options: dict[str, Any] = {"num_predict": body.get("max_tokens", 0)}
    for key in ("temperature", "top_p", "top_k"):
        if key in body:
            options[key] = body[key]
    if body.get("stop_sequences"):
        options["stop"] = body["stop_sequences"]
    native: dict[str, Any] = {
        "model": body.get("model", ""),
        "messages": messages,
        "options": options,
        "stream": body.get("stream", False),
        "tools": _tools(body.get("tools") or []),
    }
    think = _think(body)
    if think is not None:
        native["think"] = think
    return native


async def messages(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/messages."""
    body = decode_request(request, structs_anthropic.MESSAGES, empty_message="EOF")
    model: str = body.get("model", "")
    note(request, model=model, stream=body.get("stream", False))
    if not model:
        raise ApiError(400, "model is required")
    if body.get("max_tokens", 0) <= 0:
        raise ApiError(400, "max_tokens is required and must be positive")
    if not body.get("messages"):
        raise ApiError(400, "messages is required")
    native = chat_request(body)
    fmt = AnthropicFormatter(
        message_id(), model, estimate_input_tokens(body), state.config.anthropic_ping
    )
    with fmt.handler_phase():
        return await chat_decoded(request, state, native, fmt, relax_thinking=True)
