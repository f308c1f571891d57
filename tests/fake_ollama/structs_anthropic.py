"""Ollama's Anthropic Messages request structs (anthropic/anthropic.go at fb30760) as specs."""

from __future__ import annotations

from typing import Any

from .godecode import (
    ANY,
    BOOL,
    FLOAT64,
    INT,
    RAW,
    STRING,
    Custom,
    GoError,
    Ptr,
    Slice,
    Struct,
    is_string,
    unmarshal,
)
from .structs import ARGUMENTS

CONTENT_BLOCK = Struct(
    "anthropic.ContentBlock",
    [
        ("type", STRING),
        ("text", Ptr(STRING)),
        (
            "citations",
            Slice(
                Struct(
                    "anthropic.Citation",
                    [
                        ("type", STRING),
                        ("url", STRING),
                        ("title", STRING),
                        ("encrypted_index", STRING),
                        ("cited_text", STRING),
                    ],
                )
            ),
        ),
        (
            "source",
            Ptr(
                Struct(
                    "anthropic.ImageSource",
                    [("type", STRING), ("media_type", STRING), ("data", STRING), ("url", STRING)],
                )
            ),
        ),
        ("id", STRING),
        ("name", STRING),
        ("input", ARGUMENTS),
        ("tool_use_id", STRING),
        ("content", ANY),
        ("is_error", BOOL),
        ("thinking", Ptr(STRING)),
        ("signature", STRING),
    ],
)
CONTENT = Slice(CONTENT_BLOCK)
_RAW_PARAM = Struct(
    'struct { Role string "json:\\"role\\""; Content json.RawMessage "json:\\"content\\"" }',
    [("role", STRING), ("content", RAW)],
    name="",
)


def _message_param(node: Any, current: Any) -> Any:
    """MessageParam.UnmarshalJSON: content as a string (one text block) or as blocks."""
    raw = unmarshal(node, _RAW_PARAM, {})
    content = raw.get("content")
    if content is None:  # empty RawMessage: json.Unmarshal of no bytes
        raise GoError("unexpected end of JSON input")
    value = content.node
    if value is None or is_string(value):
        return {"role": raw.get("role", ""), "content": [{"type": "text", "text": value or ""}]}
    return {"role": raw.get("role", ""), "content": unmarshal(value, CONTENT)}


MESSAGE_PARAM = Custom("anthropic.MessageParam", _message_param)
TOOL = Struct(
    "anthropic.Tool",
    [
        ("type", STRING),
        ("name", STRING),
        ("description", STRING),
        ("input_schema", RAW),
        ("max_uses", INT),
    ],
)
MESSAGES = Struct(
    "anthropic.MessagesRequest",
    [
        ("model", STRING),
        ("max_tokens", INT),
        ("messages", Slice(MESSAGE_PARAM, "[]anthropic.MessageParam")),
        ("system", ANY),
        ("stream", BOOL),
        ("temperature", Ptr(FLOAT64)),
        ("top_p", Ptr(FLOAT64)),
        ("top_k", Ptr(INT)),
        ("stop_sequences", Slice(STRING)),
        ("tools", Slice(TOOL)),
        (
            "tool_choice",
            Ptr(
                Struct(
                    "anthropic.ToolChoice",
                    [("type", STRING), ("name", STRING), ("disable_parallel_tool_use", BOOL)],
                )
            ),
        ),
        (
            "thinking",
            Ptr(Struct("anthropic.ThinkingConfig", [("type", STRING), ("budget_tokens", INT)])),
        ),
        ("metadata", Ptr(Struct("anthropic.Metadata", [("user_id", STRING)]))),
        ("output_config", Ptr(Struct("anthropic.OutputConfig", [("effort", STRING)]))),
    ],
)
