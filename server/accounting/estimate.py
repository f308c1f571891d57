"""The prompt-token estimate reserved at admission (corrected by the backend's count at settle).

About four characters a token over every text the model reads: prompt, system, suffix,
template, instructions, input, message contents (text parts, nested parts, tool results),
tool definitions and `format` schemas (their JSON), plus one token per `context` entry of
/api/generate, a fixed cost per image, and a small overhead per message and per request for
the chat template.

Field names are matched as Ollama's Go decoder matches them (case-insensitively, with simple
folding: `PROMPT`, `Messages`, `optionſ`), and every spelling present is counted, so no
spelling of a field the backend reads can make its text free at admission.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from server.relay.gofields import fold

MESSAGE_OVERHEAD = 5
TEMPLATE_OVERHEAD = 20
IMAGE_TOKENS = 768  # documented: an image is reserved as this many prompt tokens
TEXT_FIELDS = ("PROMPT", "SYSTEM", "SUFFIX", "TEMPLATE", "INSTRUCTIONS", "INPUT")
SCHEMA_FIELDS = ("TOOLS", "FUNCTIONS", "FORMAT", "RESPONSE_FORMAT", "TEXT")
IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image", "input_audio"})
# Keys of a content part that are not text the model reads (ids, roles, signatures).
PART_SKIP = frozenset({"TYPE", "ROLE", "ID", "CALL_ID", "TOOL_CALL_ID", "TOOL_USE_ID", "STATUS"})
PART_SKIP |= {"SIGNATURE", "CACHE_CONTROL", "ANNOTATIONS", "LOGPROBS", "INDEX"}
MAX_DEPTH = 64  # deeper parts are counted as their JSON size


def estimate_tokens(chars: int) -> int:
    """About four characters per token; never 0 for non-empty text."""
    return math.ceil(max(0, chars) / 4)


def _json_size(value: Any) -> int:
    if value is None or isinstance(value, str):
        return len(value or "")
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return len(str(value))


class _Tally:
    """Characters and images counted so far."""

    __slots__ = ("chars", "images", "messages")

    def __init__(self) -> None:
        self.chars = 0
        self.images = 0
        self.messages = 0

    def text(self, value: Any, depth: int = 0) -> None:
        """A text value: a string, a content part, or a list of them (parts may nest)."""
        if isinstance(value, str):
            self.chars += len(value)
        elif isinstance(value, list):
            for item in value:
                self.text(item, depth + 1)
        elif isinstance(value, dict):
            if depth > MAX_DEPTH:
                self.chars += _json_size(value)
            elif value.get("type") in IMAGE_PART_TYPES:
                self.images += 1
            else:
                self.part(value, depth)

    def part(self, part: dict[str, Any], depth: int) -> None:
        """A content part or input item: every text in it but ids, roles and signatures."""
        for key, value in part.items():
            name = fold(key)
            if name in PART_SKIP:
                continue
            if name == "IMAGES" and isinstance(value, list):
                self.images += len(value)
            elif isinstance(value, (str, list)):
                self.text(value, depth + 1)
            elif isinstance(value, dict):
                self.chars += _json_size(value)  # tool input, arguments, a schema

    def message(self, message: Any) -> None:
        """One chat message: its content, images and tool calls."""
        if not isinstance(message, dict):
            return
        self.messages += 1
        self.part(message, 0)


def prompt_tokens(body: dict[str, Any]) -> int:
    """The estimated prompt tokens of a request body."""
    tally = _Tally()
    context = 0
    for key, value in body.items():
        name = fold(key)
        if name in TEXT_FIELDS:
            tally.text(value)
        elif name in SCHEMA_FIELDS:
            tally.chars += _json_size(value)
        elif name == "MESSAGES" and isinstance(value, list):
            for message in value:
                tally.message(message)
        elif name == "IMAGES" and isinstance(value, list):
            tally.images += len(value)
        elif name == "CONTEXT" and isinstance(value, list):
            context += len(value)
    return (
        estimate_tokens(tally.chars)
        + context
        + IMAGE_TOKENS * tally.images
        + TEMPLATE_OVERHEAD
        + MESSAGE_OVERHEAD * tally.messages
    )
