"""The prompt-token estimate reserved at admission (corrected by the backend's count at settle).

About four characters a token over every text the model reads: prompt, system, suffix,
template, instructions, input, message contents (text parts), tool definitions and `format`
schemas (their JSON), plus one token per `context` entry of /api/generate, a fixed cost per
image, and a small overhead per message and per request for the chat template.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

MESSAGE_OVERHEAD = 5
TEMPLATE_OVERHEAD = 20
IMAGE_TOKENS = 768  # documented: an image is reserved as this many prompt tokens
TEXT_FIELDS = ("prompt", "system", "suffix", "template", "instructions", "input")
SCHEMA_FIELDS = ("tools", "functions", "format", "response_format", "text")
IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})


def estimate_tokens(chars: int) -> int:
    """About four characters per token; never 0 for non-empty text."""
    return math.ceil(max(0, chars) / 4)


def _text(value: Any) -> tuple[int, int]:
    """(characters, images) in a text value: a string, or a list of strings / content parts."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in IMAGE_PART_TYPES:
            return 0, 1
        text = value.get("text", value.get("content"))
        return (len(text), 0) if isinstance(text, str) else (0, 0)
    if isinstance(value, list):
        chars = images = 0
        for item in value:
            if isinstance(item, (str, dict)):
                c, i = _text(item)
                chars, images = chars + c, images + i
        return chars, images
    return 0, 0


def _json_size(value: Any) -> int:
    if value is None or isinstance(value, str):
        return len(value or "")
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return 0


def prompt_tokens(body: dict[str, Any]) -> int:
    """The estimated prompt tokens of a request body."""
    chars = images = 0
    for name in TEXT_FIELDS:
        c, i = _text(body.get(name))
        chars, images = chars + c, images + i
    for name in SCHEMA_FIELDS:
        chars += _json_size(body.get(name))
    images += len(body["images"]) if isinstance(body.get("images"), list) else 0
    context = body.get("context")
    extra = len(context) if isinstance(context, list) else 0
    messages = body.get("messages")
    count = 0
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            count += 1
            c, i = _text(message.get("content"))
            chars, images = chars + c, images + i
            if isinstance(message.get("images"), list):
                images += len(message["images"])
            chars += _json_size(message.get("tool_calls"))
    return (
        estimate_tokens(chars)
        + extra
        + IMAGE_TOKENS * images
        + TEMPLATE_OVERHEAD
        + MESSAGE_OVERHEAD * count
    )
