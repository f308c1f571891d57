"""Ollama's OpenAI-compatible request structs (openai/openai.go, openai/responses.go) as specs.

Note what is not there: ChatCompletionRequest has no `max_completion_tokens` field at fb30760,
so Ollama ignores it (unknown key); only `max_tokens` caps a /v1 chat completion.
"""

from __future__ import annotations

from typing import Any

from .godecode import (
    ANY,
    BOOL,
    FLOAT32,
    FLOAT64,
    INT,
    RAW,
    STRING,
    Custom,
    GoError,
    Map,
    Ptr,
    Slice,
    Struct,
    UnmarshalTypeError,
    is_string,
    unmarshal,
)
from .structs import TOOLS

STREAM_OPTIONS = Ptr(Struct("openai.StreamOptions", [("include_usage", BOOL)]))
_FUNCTION = Struct(
    'struct { Name string "json:\\"name\\""; Arguments string "json:\\"arguments\\"" }',
    [("name", STRING), ("arguments", STRING)],
    name="",
)
TOOL_CALL = Struct(
    "openai.ToolCall",
    [("id", STRING), ("index", INT), ("type", STRING), ("function", _FUNCTION)],
)
MESSAGE = Struct(
    "openai.Message",
    [
        ("role", STRING),
        ("content", ANY),
        ("reasoning", STRING),
        ("tool_calls", Slice(TOOL_CALL)),
        ("name", STRING),
        ("tool_call_id", STRING),
    ],
)
CHAT_COMPLETION = Struct(
    "openai.ChatCompletionRequest",
    [
        ("model", STRING),
        ("messages", Slice(MESSAGE)),
        ("stream", BOOL),
        ("stream_options", STREAM_OPTIONS),
        ("max_tokens", Ptr(INT)),
        ("seed", Ptr(INT)),
        ("stop", ANY),
        ("temperature", Ptr(FLOAT64)),
        ("frequency_penalty", Ptr(FLOAT64)),
        ("presence_penalty", Ptr(FLOAT64)),
        ("top_p", Ptr(FLOAT64)),
        (
            "response_format",
            Ptr(
                Struct(
                    "openai.ResponseFormat",
                    [
                        ("type", STRING),
                        ("json_schema", Ptr(Struct("openai.JsonSchema", [("schema", RAW)]))),
                    ],
                )
            ),
        ),
        ("tools", Slice(TOOLS.elem, "[]api.Tool")),
        ("reasoning", Ptr(Struct("openai.Reasoning", [("effort", STRING)]))),
        ("reasoning_effort", Ptr(STRING)),
        ("logprobs", Ptr(BOOL)),
        ("top_logprobs", INT),
        ("_debug_render_only", BOOL),
    ],
)
COMPLETION = Struct(
    "openai.CompletionRequest",
    [
        ("model", STRING),
        ("prompt", STRING),
        ("frequency_penalty", FLOAT32),
        ("max_tokens", Ptr(INT)),
        ("presence_penalty", FLOAT32),
        ("seed", Ptr(INT)),
        ("stop", ANY),
        ("stream", BOOL),
        ("stream_options", STREAM_OPTIONS),
        ("temperature", Ptr(FLOAT32)),
        ("top_p", FLOAT32),
        ("suffix", STRING),
        ("logprobs", Ptr(INT)),
        ("_debug_render_only", BOOL),
    ],
)
EMBED = Struct(
    "openai.EmbedRequest",
    [("input", ANY), ("model", STRING), ("dimensions", INT), ("encoding_format", STRING)],
)

# --- /v1/responses ---------------------------------------------------------------------------

_TYPE_ONLY = Struct('struct { Type string "json:\\"type\\"" }', [("type", STRING)], name="")
_TYPE_ROLE = Struct(
    'struct { Type string "json:\\"type\\""; Role string "json:\\"role\\"" }',
    [("type", STRING), ("role", STRING)],
    name="",
)
_TEXT = [("type", STRING), ("text", STRING)]
CONTENT_TYPES = {
    "input_text": Struct("openai.ResponsesTextContent", _TEXT),
    "input_image": Struct(
        "openai.ResponsesImageContent",
        [("type", STRING), ("detail", STRING), ("file_id", STRING), ("image_url", STRING)],
    ),
    "output_text": Struct("openai.ResponsesOutputTextContent", _TEXT),
    "input_file": Struct(
        "openai.ResponsesFileContent",
        [
            ("type", STRING),
            ("file_data", STRING),
            ("file_id", STRING),
            ("file_url", STRING),
            ("filename", STRING),
        ],
    ),
}
_RAW_LIST = Slice(RAW)


def _wrap(prefix: str, err: Exception) -> GoError:
    return GoError(f"{prefix}: {err}")


def _raw_items(node: Any, what: str) -> list[Any]:
    if isinstance(node, list):
        return node
    try:
        unmarshal(node, _RAW_LIST)
    except (UnmarshalTypeError, GoError) as err:
        raise _wrap(f"{what} must be a string or array", err) from err
    return []  # null: no items


def content_item(node: Any) -> dict[str, Any]:
    """unmarshalResponsesContent: one content part, by its `type`."""
    kind = unmarshal(node, _TYPE_ONLY, {}).get("type", "")
    spec = CONTENT_TYPES.get(kind)
    if spec is None:
        raise GoError(f"unknown content type: {kind}")
    item: dict[str, Any] = unmarshal(node, spec, {})
    item["type"] = kind
    return item


def _content_list(node: Any, what: str) -> list[dict[str, Any]]:
    if node is None or is_string(node):
        return [{"type": "input_text", "text": unmarshal(node, STRING) or ""}]
    out = []
    for index, raw in enumerate(_raw_items(node, what)):
        try:
            out.append(content_item(raw))
        except (UnmarshalTypeError, GoError) as err:
            raise _wrap(f"{what}[{index}]", err) from err
    return out


_AUX_MESSAGE = Struct("openai.aux", [("type", STRING), ("role", STRING), ("content", RAW)], name="")
_AUX_OUTPUT = Struct(
    "openai.aux", [("type", STRING), ("call_id", STRING), ("output", RAW)], name=""
)
_FUNCTION_CALL = Struct(
    "openai.ResponsesFunctionCall",
    [
        ("id", STRING),
        ("type", STRING),
        ("call_id", STRING),
        ("name", STRING),
        ("arguments", STRING),
    ],
)
_SUMMARY = Struct("openai.ResponsesReasoningSummary", _TEXT)
_REASONING = Struct(
    "openai.ResponsesReasoningInput",
    [("id", STRING), ("type", STRING), ("summary", Slice(_SUMMARY)), ("encrypted_content", STRING)],
)
_ACTION = Struct("openai.ResponsesWebSearchAction", [("type", STRING), ("query", STRING)])
_WEB_SEARCH = Struct(
    "openai.ResponsesWebSearchCall",
    [("id", STRING), ("type", STRING), ("status", STRING), ("action", Ptr(_ACTION))],
)


def input_item(node: Any) -> dict[str, Any]:
    """unmarshalResponsesInputItem: one input item; `kind` names the Go type chosen."""
    peek = unmarshal(node, _TYPE_ROLE, {})
    kind = peek.get("type", "") or ("message" if peek.get("role") else "")
    if kind == "message":
        aux = unmarshal(node, _AUX_MESSAGE, {})
        raw = aux.get("content")
        content = [] if raw is None else _content_list(raw.node, "content")
        return {"kind": kind, "role": aux.get("role", ""), "content": content}
    if kind == "function_call_output":
        aux = unmarshal(node, _AUX_OUTPUT, {})
        raw, output = aux.get("output"), ""
        if raw is not None and (raw.node is None or is_string(raw.node)):
            output = unmarshal(raw.node, STRING) or ""
        elif raw is not None:
            parts = _content_list(raw.node, "output")
            output = "".join(p.get("text", "") for p in parts if "text" in p)
        return {"kind": kind, "call_id": aux.get("call_id", ""), "output": output}
    specs = {
        "function_call": _FUNCTION_CALL,
        "reasoning": _REASONING,
        "web_search_call": _WEB_SEARCH,
    }
    if kind in specs:
        return {"kind": kind, **unmarshal(node, specs[kind], {})}
    if not kind:
        raise GoError("input item missing required 'type' field")
    raise GoError(f'unknown input item type: "{kind}"')


def _responses_input(node: Any, current: Any) -> Any:
    if node is None or is_string(node):
        return {"text": unmarshal(node, STRING) or ""}
    items = []
    for index, raw in enumerate(_raw_items(node, "input")):
        try:
            items.append(input_item(raw))
        except (UnmarshalTypeError, GoError) as err:
            raise _wrap(f"input[{index}]", err) from err
    return {"items": items}


RESPONSES_TOOL = Struct(
    "openai.ResponsesTool",
    [
        ("type", STRING),
        ("name", STRING),
        ("description", Ptr(STRING)),
        ("strict", Ptr(BOOL)),
        ("parameters", Map(ANY)),
    ],
)
RESPONSES_TOOL.add("tools", Slice(RESPONSES_TOOL))
RESPONSES = Struct(
    "openai.ResponsesRequest",
    [
        ("model", STRING),
        ("background", BOOL),
        ("conversation", RAW),
        ("include", Slice(STRING)),
        ("input", Custom("openai.ResponsesInput", _responses_input)),
        ("instructions", STRING),
        ("max_output_tokens", Ptr(INT)),
        (
            "reasoning",
            Struct(
                "openai.ResponsesReasoning",
                [("effort", STRING), ("generate_summary", STRING), ("summary", STRING)],
            ),
        ),
        ("temperature", Ptr(FLOAT64)),
        (
            "text",
            Ptr(
                Struct(
                    "openai.ResponsesText",
                    [
                        (
                            "format",
                            Ptr(
                                Struct(
                                    "openai.ResponsesTextFormat",
                                    [
                                        ("type", STRING),
                                        ("name", STRING),
                                        ("schema", RAW),
                                        ("strict", Ptr(BOOL)),
                                    ],
                                )
                            ),
                        )
                    ],
                )
            ),
        ),
        ("top_p", Ptr(FLOAT64)),
        ("truncation", Ptr(STRING)),
        ("tools", Slice(RESPONSES_TOOL)),
        ("stream", Ptr(BOOL)),
    ],
)
