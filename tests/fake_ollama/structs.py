"""Ollama's native request structs (api/types.go at fb30760) as Go decoding specs.

Each spec decodes a body exactly as Ollama's handler sees it (see godecode). Custom
UnmarshalJSON methods are reproduced: api.Message lower-cases `role`, api.Duration
(`keep_alive`) gives nanoseconds, api.ThinkValue accepts a bool or one of the levels.
`options` stays a map[string]any; `options_from_map` is api.Options.FromMap.
"""

from __future__ import annotations

import struct
from typing import Any

from .godecode import (
    ANY,
    BOOL,
    INT,
    RAW,
    STRING,
    Custom,
    GoError,
    Map,
    Obj,
    Ptr,
    Slice,
    Struct,
    bytes_type,
    is_string,
    to_any,
    unmarshal,
)
from .gotime import MAX_INT64, DurationError, go_int64, parse_duration

THINK_LEVELS = ("high", "medium", "low", "max")
OPTIONS = Map(ANY)
IMAGES = Slice(bytes_type("api.ImageData"))


def _go_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "%!s(<nil>)" if value is None else type(value).__name__


def _duration(node: Any, current: Any) -> Any:
    value = unmarshal(node, ANY)
    if isinstance(value, float):
        return MAX_INT64 if value < 0 else go_int64(value * 1e9)
    if isinstance(value, str):
        try:
            ns = parse_duration(value)
        except DurationError as err:
            raise GoError(str(err)) from err
        return MAX_INT64 if ns < 0 else ns
    raise GoError(f"Unsupported type: '{_go_type_of(value)}'")


def _think(node: Any, current: Any) -> Any:
    if isinstance(node, bool):
        return node
    if is_string(node):
        text = unmarshal(node, STRING)
        if text not in THINK_LEVELS:
            raise GoError(
                f'invalid think value: "{text}" (must be "high", "medium", "low", "max", '
                "true, or false)"
            )
        return text
    raise GoError(
        'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'
    )


def _arguments(node: Any, current: Any) -> Any:
    if node is None:
        return {}
    if not isinstance(node, Obj):
        raise GoError("orderedmap: expected JSON object")
    return to_any(node)


DURATION = Ptr(Custom("api.Duration", _duration))
THINK = Ptr(Custom("api.ThinkValue", _think))
ARGUMENTS = Custom("api.ToolCallFunctionArguments", _arguments)

TOOL_CALL = Struct(
    "api.ToolCall",
    [
        ("id", STRING),
        (
            "function",
            Struct(
                "api.ToolCallFunction", [("index", INT), ("name", STRING), ("arguments", ARGUMENTS)]
            ),
        ),
    ],
)
_MESSAGE_FIELDS = [
    ("role", STRING),
    ("content", STRING),
    ("thinking", STRING),
    ("images", IMAGES),
    ("tool_calls", Slice(TOOL_CALL)),
    ("tool_name", STRING),
    ("tool_call_id", STRING),
]
_MESSAGE_ALIAS = Struct("api.Alias", _MESSAGE_FIELDS)


def _message(node: Any, current: Any) -> Any:
    message = unmarshal(node, _MESSAGE_ALIAS, {})  # a fresh Alias: the old element is replaced
    message["role"] = str(message.get("role", "")).lower()
    return message


MESSAGE = Custom("api.Message", _message)
PARAMETERS = Struct(
    "api.ToolFunctionParameters",
    [
        ("type", STRING),
        ("$defs", ANY),
        ("items", ANY),
        ("required", Slice(STRING)),
        ("properties", Ptr(Map(ANY, "api.ToolPropertiesMap"))),
    ],
)
TOOL = Struct(
    "api.Tool",
    [
        ("type", STRING),
        ("items", ANY),
        (
            "function",
            Struct(
                "api.ToolFunction",
                [("name", STRING), ("description", STRING), ("parameters", PARAMETERS)],
            ),
        ),
    ],
)
TOOLS = Slice(TOOL, "api.Tools")

_RUN_FIELDS = [  # the tail GenerateRequest and ChatRequest share
    ("think", THINK),
    ("truncate", Ptr(BOOL)),
    ("shift", Ptr(BOOL)),
    ("_debug_render_only", BOOL),
    ("logprobs", BOOL),
    ("top_logprobs", INT),
]
GENERATE = Struct(
    "api.GenerateRequest",
    [
        ("model", STRING),
        ("prompt", STRING),
        ("suffix", STRING),
        ("system", STRING),
        ("template", STRING),
        ("context", Slice(INT)),
        ("stream", Ptr(BOOL)),
        ("raw", BOOL),
        ("format", RAW),
        ("keep_alive", DURATION),
        ("images", IMAGES),
        ("options", OPTIONS),
        *_RUN_FIELDS,
    ],
)
CHAT = Struct(
    "api.ChatRequest",
    [
        ("model", STRING),
        ("messages", Slice(MESSAGE, "[]api.Message")),
        ("stream", Ptr(BOOL)),
        ("format", RAW),
        ("keep_alive", DURATION),
        ("tools", TOOLS),
        ("options", OPTIONS),
        *_RUN_FIELDS,
    ],
)
EMBED = Struct(
    "api.EmbedRequest",
    [
        ("model", STRING),
        ("input", ANY),
        ("keep_alive", DURATION),
        ("truncate", Ptr(BOOL)),
        ("dimensions", INT),
        ("options", OPTIONS),
    ],
)
EMBEDDING = Struct(
    "api.EmbeddingRequest",
    [("model", STRING), ("prompt", STRING), ("keep_alive", DURATION), ("options", OPTIONS)],
)
SHOW = Struct(
    "api.ShowRequest",
    [
        ("model", STRING),
        ("system", STRING),
        ("template", STRING),
        ("verbose", BOOL),
        ("options", OPTIONS),
        ("name", STRING),
    ],
)


def _transfer(go_name: str) -> Struct:
    return Struct(
        go_name,
        [
            ("model", STRING),
            ("insecure", BOOL),
            ("username", STRING),
            ("password", STRING),
            ("stream", Ptr(BOOL)),
            ("name", STRING),
        ],
    )


PULL = _transfer("api.PullRequest")
PUSH = _transfer("api.PushRequest")
_STR_MAP = Map(STRING)
CREATE = Struct(
    "api.CreateRequest",
    [
        ("model", STRING),
        ("stream", Ptr(BOOL)),
        ("quantize", STRING),
        ("draft_quantize", STRING),
        ("from", STRING),
        ("remote_host", STRING),
        ("files", _STR_MAP),
        ("draft_files", _STR_MAP),
        ("adapters", _STR_MAP),
        ("template", STRING),
        ("license", ANY),
        ("system", STRING),
        ("parameters", Map(ANY)),
        ("messages", Slice(MESSAGE, "[]api.Message")),
        ("renderer", STRING),
        ("parser", STRING),
        ("requires", STRING),
        ("info", Map(ANY)),
        ("name", STRING),
        ("quantization", STRING),
    ],
)
COPY = Struct("api.CopyRequest", [("source", STRING), ("destination", STRING)])
DELETE = Struct("api.DeleteRequest", [("model", STRING), ("name", STRING)])

# api.Options and its embedded api.Runner: JSON name -> Go kind, as FromMap dispatches on it
OPTION_KINDS = {
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "*int",
    "use_mmap": "*bool",
    "num_thread": "int",
    "draft_num_predict": "int",
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "top_p": "float32",
    "min_p": "float32",
    "typical_p": "float32",
    "repeat_last_n": "int",
    "temperature": "float32",
    "repeat_penalty": "float32",
    "presence_penalty": "float32",
    "frequency_penalty": "float32",
    "stop": "[]string",
}


class OptionError(ValueError):
    """FromMap's error, e.g. `option "num_ctx" must be of type integer` (a 500 in Ollama)."""


def options_from_map(options: dict[str, Any] | None) -> dict[str, Any]:
    """api.Options.FromMap: known keys (exact match only) converted to their Go types.

    Numbers arrive as float64; int options truncate them (0.5 -> 0, out of range -> MinInt64);
    unknown keys and null values are skipped.
    """
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        kind = OPTION_KINDS.get(key)
        if kind is None or value is None:
            continue
        if kind in ("int", "*int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise OptionError(f'option "{key}" must be of type integer')
            out[key] = go_int64(float(value))
        elif kind == "*bool":
            if not isinstance(value, bool):
                raise OptionError(f'option "{key}" must be of type boolean')
            out[key] = value
        elif kind == "float32":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise OptionError(f'option "{key}" must be of type float32')
            out[key] = unmarshal_float32(value)
        else:
            if not isinstance(value, list):
                raise OptionError(f'option "{key}" must be of type array')
            if not all(isinstance(item, str) for item in value):
                raise OptionError(f'option "{key}" must be of an array of strings')
            out[key] = list(value)
    return out


def unmarshal_float32(value: float) -> float:
    """A float64 stored into a float32 field (reflect SetFloat rounds)."""
    try:
        result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")
    return result


def num_predict(options: dict[str, Any] | None) -> int | None:
    """The effective token cap from `options`: None when absent or <= 0 (no limit)."""
    value = options_from_map({"num_predict": (options or {}).get("num_predict")}).get("num_predict")
    return value if isinstance(value, int) and value > 0 else None
