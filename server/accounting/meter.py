"""Token counts read from NDJSON/SSE records and JSON bodies as they pass, estimated if absent."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from server.accounting.estimate import estimate_tokens

TAIL_BYTES = 4096
CAPTURE_LIMIT = 1 << 20  # at most 1 MiB of response text kept for a prompt log
_DONE = re.compile(rb'"done"\s*:\s*true')
_COUNT = re.compile(
    rb'(?<!\\)"(prompt_eval_count|eval_count|prompt_tokens|completion_tokens|input_tokens|'
    rb'output_tokens)"\s*:\s*(\d+)'
)
# Named SSE events whose usage is not final, and those that carry generated text.
PROVISIONAL_USAGE = frozenset({"message_start", "response.created", "response.in_progress"})
DELTA_EVENTS = frozenset({"content_block_delta", "response.output_text.delta"})


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
        self.chunks = 0  # content records seen (about one token each)
        self.body_bytes = 0
        self._tail = b""
        self._text: list[str] = []
        self._text_len = 0
        self._body: list[bytes] = []

    def ndjson(self, line: bytes) -> None:
        """One native stream line: counts from the final `done` line, text if captured."""
        if not line.strip():
            return
        final = _DONE.search(line) is not None
        if final or self.capture:
            obj = _loads(line)
            if final:
                self._native_counts(obj)
            elif obj is not None:
                self._keep(_native_text(obj))
        if not final:
            self.chunks += 1

    def sse(self, event: bytes) -> bool:
        """One SSE event; True when it is the usage-only chunk (`choices: []`).

        Unnamed events are OpenAI chat/completion chunks; named ones are Anthropic Messages
        (final usage in message_delta; message_start's is an estimate) or OpenAI Responses
        (usage in response.completed) events. Content deltas count as about a token each.
        """
        name, payload = sse_parts(event)
        if not payload or payload == b"[DONE]":
            return False
        usage_only = False
        if b'"usage"' in payload or self.capture:
            obj = _loads(payload)
            usage = _usage_of(obj) if name not in PROVISIONAL_USAGE else None
            if usage is not None:
                self._usage_counts(usage)
                usage_only = obj is not None and obj.get("choices") == []
            if obj is not None and self.capture:
                self._keep(_openai_text(obj) or _delta_text(obj))
        if not usage_only and (name is None or name in DELTA_EVENTS):
            self.chunks += 1
        return usage_only

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
                self._keep(_native_text(obj) or _openai_text(obj, message=True))

    def counted(self, prompt_estimate: int, *, generates: bool) -> Counted:
        """Reported counts where present, estimates where not."""
        estimated = self.prompt is None or (generates and self.completion is None)
        prompt = self.prompt if self.prompt is not None else prompt_estimate
        if not generates:
            return Counted(prompt, 0, estimated)
        completion = self.completion
        if completion is None:
            completion = self.chunks if self.chunks else estimate_tokens(self._text_len)
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


def _loads(data: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _int(value: Any, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _native_text(obj: dict[str, Any]) -> str:
    message = obj.get("message")
    text = message.get("content") if isinstance(message, dict) else obj.get("response")
    return text if isinstance(text, str) else ""


def _openai_text(obj: dict[str, Any], *, message: bool = False) -> str:
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    part = choice.get("message" if message else "delta")
    text = part.get("content") if isinstance(part, dict) else choice.get("text")
    return text if isinstance(text, str) else ""


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


def _delta_text(obj: dict[str, Any]) -> str:
    """Text of an Anthropic content_block_delta or a Responses output_text.delta."""
    delta = obj.get("delta")
    if isinstance(delta, str):
        return delta
    text = delta.get("text") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else ""
