"""Token counts read from NDJSON/SSE records and JSON bodies as they pass, estimated if absent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from server.accounting.estimate import estimate_tokens

TAIL_BYTES = 4096
CAPTURE_LIMIT = 1 << 20  # at most 1 MiB of response text kept for a prompt log
SINGLE_TOKEN_CHARS = 16  # a record with no more generated text than this is one token
_COUNT = re.compile(
    rb'(?<!\\)"(prompt_eval_count|eval_count|prompt_tokens|completion_tokens|input_tokens|'
    rb'output_tokens)"\s*:\s*(\d+)'
)
# Named SSE events whose usage is not final, and those that carry generated text.
PROVISIONAL_USAGE = frozenset({"message_start", "response.created", "response.in_progress"})
# Anthropic's content deltas; every Responses event named `response.….delta` carries text too
# (output text, reasoning, function-call arguments).
DELTA_EVENTS = frozenset({"content_block_delta", "content_block_start"})


@dataclass(frozen=True, slots=True)
class Counted:
    """Tokens of one request, and whether any figure had to be estimated."""

    prompt: int
    completion: int
    estimated: bool

    @property
    def total(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt + self.completion


class Meter:
    """Watches the response for usage fields; keeps text only when asked (prompt logging)."""

    def __init__(self, *, capture: bool) -> None:
        self.capture = capture
        self.prompt: int | None = None
        self.completion: int | None = None
        self.passed = 0  # output tokens counted in the records that passed (see record_tokens)
        self.body_bytes = 0
        self._tail = b""
        self._text: list[str] = []
        self._text_len = 0
        self._body: list[bytes] = []

    def ndjson(self, line: bytes) -> None:
        """One native stream line: counts from the final `done` line, text if captured."""
        if not line.strip():
            return
        obj = _loads(line)
        if obj is not None and obj.get("done") is True:
            self._native_counts(obj)
            return
        text, chars = _native_text(obj) if obj is not None else ("", 0)
        if self.capture:
            self._keep(text)
        self.passed += record_tokens(chars)

    def sse(self, event: bytes) -> bool:
        """One SSE event; True when it is the usage-only chunk (`choices: []`).

        Unnamed events are OpenAI chat/completion chunks; named ones are Anthropic Messages
        (final usage in message_delta; message_start's is an estimate) or OpenAI Responses
        (usage in response.completed) events. Content deltas count as about a token each.
        """
        name, payload = sse_parts(event)
        if not payload or payload == b"[DONE]":
            return False
        obj = _loads(payload)
        if obj is None:
            return False
        usage = _usage_of(obj) if name not in PROVISIONAL_USAGE else None
        if usage is not None:
            self._usage_counts(usage)
            if obj.get("choices") == []:
                return True
        if name is None:
            text, chars = _openai_text(obj)
        elif name in DELTA_EVENTS or (name.startswith("response.") and name.endswith(".delta")):
            text, chars = _delta_text(obj)
        else:
            return False
        if self.capture:
            self._keep(text)
        if chars or name != "content_block_start":
            self.passed += record_tokens(chars)
        return False

    def body(self, chunk: bytes) -> None:
        """Part of a non-streamed JSON body; only its tail is kept (all of it when capturing)."""
        self.body_bytes += len(chunk)
        self._tail = (self._tail + chunk)[-TAIL_BYTES:]
        if self.capture and self.body_bytes <= CAPTURE_LIMIT:
            self._body.append(chunk)

    def finish_body(self) -> None:
        """Read the counts at the end of a non-streamed body (they come last)."""
        found = {name: int(value) for name, value in _COUNT.findall(self._tail)}
        prompt = found.get(
            b"prompt_eval_count", found.get(b"prompt_tokens", found.get(b"input_tokens"))
        )
        completion = found.get(
            b"eval_count", found.get(b"completion_tokens", found.get(b"output_tokens"))
        )
        self.prompt = prompt if prompt is not None else self.prompt
        self.completion = completion if completion is not None else self.completion
        if self.capture and self._body:
            obj = _loads(b"".join(self._body))
            if obj is not None:
                self._keep(_native_text(obj)[0] or _openai_text(obj, message=True)[0])

    def counted(self, prompt_estimate: int, *, generates: bool) -> Counted:
        """Reported counts where present, estimates where not."""
        estimated = self.prompt is None or (generates and self.completion is None)
        prompt = self.prompt if self.prompt is not None else prompt_estimate
        if not generates:
            return Counted(prompt, 0, estimated)
        completion = self.completion
        if completion is None:
            completion = self.passed if self.passed else estimate_tokens(self._text_len)
        return Counted(prompt, completion, estimated)

    @property
    def text(self) -> str:
        """The captured response text (empty unless capturing)."""
        return "".join(self._text)

    def _keep(self, text: str) -> None:
        if text and self._text_len < CAPTURE_LIMIT:
            self._text.append(text)
            self._text_len += len(text)

    def _native_counts(self, obj: dict[str, Any] | None) -> None:
        if obj is None:
            return
        self.prompt = _int(obj.get("prompt_eval_count"), self.prompt)
        self.completion = _int(obj.get("eval_count"), self.completion)

    def _usage_counts(self, usage: dict[str, Any]) -> None:
        """OpenAI's prompt/completion_tokens or Anthropic's and Responses' input/output_tokens."""
        prompt = _int(usage.get("prompt_tokens"), _int(usage.get("input_tokens")))
        completion = _int(usage.get("completion_tokens"), _int(usage.get("output_tokens")))
        if prompt or completion:  # /v1/completions puts zero usage on every chunk
            self.prompt = prompt if prompt is not None else self.prompt
            self.completion = completion if completion is not None else self.completion


def record_tokens(chars: int) -> int:
    """Output tokens counted for one content record with `chars` characters of generated text.

    A token stream sends about one token a record, so a short record is one token; a record
    with more text than one token can hold (a tool call, a batch of text) counts four
    characters a token, so no record can carry more output past the reservation than it is
    charged for.
    """
    return 1 if chars <= SINGLE_TOKEN_CHARS else estimate_tokens(chars)


def _loads(data: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _int(value: Any, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _size(value: Any) -> int:
    """Characters of generated text in a value: a string's length, else its JSON's."""
    if isinstance(value, str):
        return len(value)
    if value is None:
        return 0
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return 0


def _texts(part: Any, text_keys: tuple[str, ...], other_keys: tuple[str, ...]) -> tuple[str, int]:
    """(the visible text, characters of everything generated) of one object."""
    if not isinstance(part, dict):
        return "", 0
    text = "".join(t for k in text_keys if isinstance(t := part.get(k), str))
    return text, len(text) + sum(_size(part.get(k)) for k in other_keys)


def _native_text(obj: dict[str, Any]) -> tuple[str, int]:
    """A native record's text, and the characters it generated (thinking, tool calls too)."""
    message = obj.get("message")
    if isinstance(message, dict):
        return _texts(message, ("content",), ("thinking", "tool_calls"))
    return _texts(obj, ("response",), ("thinking",))


def _openai_text(obj: dict[str, Any], *, message: bool = False) -> tuple[str, int]:
    """An OpenAI chunk's (or body's) text, and the characters it generated, over its choices."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return "", 0
    texts: list[str] = []
    chars = 0
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        part = choice.get("message" if message else "delta")
        if isinstance(part, dict):
            more = ("reasoning", "reasoning_content", "refusal", "tool_calls", "function_call")
            text, n = _texts(part, ("content",), more)
        else:
            text, n = _texts(choice, ("text",), ())
        texts.append(text)
        chars += n
    return "".join(texts), chars


def sse_parts(event: bytes) -> tuple[str | None, bytes]:
    """(event name or None, the joined data) of one SSE event."""
    name: str | None = None
    data: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data.append(line[5:].strip())
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return name, b"\n".join(data)


def _usage_of(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    usage = obj.get("usage")
    response = obj.get("response")
    if usage is None and isinstance(response, dict):
        usage = response.get("usage")
    return usage if isinstance(usage, dict) else None


def _delta_text(obj: dict[str, Any]) -> tuple[str, int]:
    """An Anthropic delta or block start, or a Responses `….delta`: its text and characters."""
    delta = obj.get("delta")
    if isinstance(delta, str):
        return delta, len(delta)
    if isinstance(delta, dict):
        return _texts(delta, ("text",), ("partial_json", "thinking"))
    block = obj.get("content_block")
    if isinstance(block, dict):  # a tool_use block may bring its input whole
        return _texts(block, ("text",), ("input", "thinking"))
    return "", 0
