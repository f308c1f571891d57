"""POST /v1/responses, OpenAI's Responses API (Ollama's ResponsesMiddleware, openai/responses.go).

The request is converted to an api.ChatRequest (`instructions` -> a system message, string or
item `input` -> messages, `max_output_tokens` -> num_predict, temperature defaulting to 1.0) and
run by the chat handler; stream defaults to false.
"""

from __future__ import annotations

import json
import random
from typing import Any

from sanic import HTTPResponse, Request

from . import structs_openai
from .godecode import Raw
from .native import chat_decoded
from .openai_compat import decode_image_url, handler_phase, think_from_effort
from .records import note
from .responses_format import ResponsesFormatter
from .state import State
from .web import ApiError, decode_request


def _content(parts: list[dict[str, Any]]) -> tuple[str, list[bytes]]:
    text, images = "", []
    for part in parts:
        if part["type"] in ("input_text", "output_text"):
            text += part.get("text", "")
        elif part["type"] == "input_image" and part.get("image_url"):
            images.append(decode_image_url(part["image_url"]))
        elif part["type"] == "input_file":
            raise ApiError(400, "file inputs are not currently supported")
    return text, images


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    given = body.get("input") or {}
    if given.get("text"):
        messages.append({"role": "user", "content": given["text"]})
    pending = ""
    for item in given.get("items") or []:
        kind = item["kind"]
        if kind == "reasoning":
            pending = item.get("encrypted_content", "")
        elif kind == "message":
            text, images = _content(item["content"])
            message = {"role": str(item.get("role", "")).lower(), "content": text, "images": images}
            if message["role"] == "assistant" and pending:
                message["thinking"], pending = pending, ""
            messages.append(message)
        elif kind == "function_call":
            try:
                arguments = json.loads(item["arguments"]) if item.get("arguments") else {}
            except ValueError as err:
                raise ApiError(400, f"failed to parse function call arguments: {err}") from err
            call = {
                "id": item.get("call_id", ""),
                "function": {"name": item.get("name", ""), "arguments": arguments},
            }
            if messages and messages[-1]["role"] == "assistant":
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "content": item.get("output", ""),
                    "tool_call_id": item.get("call_id", ""),
                }
            )
    if pending:
        messages.append({"role": "assistant", "content": "", "thinking": pending})
    return messages


def _tools(tools: list[dict[str, Any]], prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        if tool.get("type") == "web_search":
            out.append({"type": "function", "function": {"name": "web_search", "parameters": {}}})
        elif tool.get("type") == "namespace":
            out += _tools(tool.get("tools") or [], f"{prefix}{tool.get('name', '')}.")
        else:
            name = tool.get("name", "")
            name = name if not prefix or name.startswith(prefix) else prefix + name
            function = {
                "name": name,
                "description": tool.get("description") or "",
                "parameters": tool.get("parameters") or {},
            }
            out.append({"type": tool.get("type", ""), "function": function})
    return out


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """openai.FromResponsesRequest (plus the middleware's stream flag)."""
    options: dict[str, Any] = {"temperature": body.get("temperature", 1.0)}
    if "top_p" in body:
        options["top_p"] = body["top_p"]
    if "max_output_tokens" in body:
        options["num_predict"] = body["max_output_tokens"]
    native: dict[str, Any] = {
        "model": body.get("model", ""),
        "messages": _messages(body),
        "options": options,
        "tools": _tools(body.get("tools") or []),
        "stream": bool(body.get("stream")),
    }
    think = think_from_effort(body.get("reasoning", {}).get("effort", ""))
    if think is not None:
        native["think"] = think
    text_format = (body.get("text") or {}).get("format") or {}
    schema = text_format.get("schema")
    if text_format.get("type") == "json_schema" and isinstance(schema, Raw):
        native["format"] = schema
    return native


async def responses(request: Request, state: State) -> HTTPResponse | None:
    """POST /v1/responses."""
    body = decode_request(request, structs_openai.RESPONSES, empty_message="EOF")
    note(request, model=body.get("model", ""), stream=bool(body.get("stream")))
    native = chat_request(body)
    response_id = f"resp_{random.randrange(999999)}"
    item_id = f"msg_{random.randrange(999999)}"
    fmt = ResponsesFormatter(response_id, item_id, body)
    with handler_phase():
        return await chat_decoded(request, state, native, fmt)
