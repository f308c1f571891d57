"""Deterministic 'model output': tokens, thinking, tool calls and prompt token accounting."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from .util import estimate_tokens, go_json, stable_int

WORDS = [
    "the",
    "sky",
    "light",
    "blue",
    "short",
    "waves",
    "air",
    "scatter",
    "sun",
    "more",
    "than",
    "red",
    "because",
    "of",
    "rayleigh",
    "molecules",
    "in",
    "our",
    "atmosphere",
    "small",
    "particles",
    "and",
    "this",
    "is",
    "why",
    "we",
    "see",
    "a",
    "bright",
    "color",
    "during",
    "day",
    "at",
    "sunset",
    "it",
    "looks",
    "orange",
    "since",
    "path",
    "longer",
    "through",
    "layers",
    "which",
    "removes",
    "most",
    "other",
    "hues",
    "so",
    "only",
    "warm",
    "tones",
    "reach",
    "eyes",
]
THINK_WORDS = [
    "okay",
    "the",
    "user",
    "asks",
    "about",
    "this",
    "let",
    "me",
    "think",
    "first",
    "I",
    "should",
    "explain",
    "clearly",
    "maybe",
    "mention",
    "key",
    "facts",
    "then",
    "answer",
    "briefly",
    "and",
    "check",
    "details",
]
TEMPLATE_OVERHEAD = 21  # llama3.2 system header with knowledge-cutoff text
MESSAGE_OVERHEAD = 5  # role header tokens per extra chat message
SENTENCE = 8


@dataclass
class ToolCall:
    """One function call emitted by the model."""

    id: str
    name: str
    arguments: dict[str, Any]
    index: int = 0


@dataclass
class Piece:
    """One streamed unit of output (one native chunk)."""

    kind: str  # "content" | "thinking" | "tool"
    text: str = ""
    tool: ToolCall | None = None
    tokens: int = 1


@dataclass
class Plan:
    """Everything a generation will emit."""

    pieces: list[Piece]
    prompt_tokens: int
    hit_limit: bool
    seed: str
    context_ids: list[int] = field(default_factory=list)
    reason: str | None = None  # overrides done_reason (e.g. "load")

    @property
    def done_reason(self) -> str:
        """`length` when the token cap was reached, else `stop`."""
        if self.reason is not None:
            return self.reason
        return "length" if self.hit_limit else "stop"


def limit_tokens(default: int, cap: int | None) -> tuple[int, bool]:
    """Effective generation length and whether the cap (num_predict > 0) was hit."""
    if cap is None or cap <= 0:
        return default, False
    return min(default, cap), cap <= default


def _words(seed: str, count: int, vocab: list[str], close_last: bool) -> list[str]:
    rng = random.Random(stable_int(seed, "words"))  # deterministic; a prefix for a smaller count
    out: list[str] = []
    for i in range(count):
        word = vocab[rng.randrange(len(vocab))]
        starts = i == 0 or i % SENTENCE == 0
        word = word[:1].upper() + word[1:] if starts else word
        word = word if i == 0 else " " + word
        if (i + 1) % SENTENCE == 0 or (close_last and i == count - 1):
            word += "."
        out.append(word)
    return out


def _schema_value(seed: str, key: str, schema: Any) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][stable_int(seed, key) % len(schema["enum"])]
    if kind == "integer":
        return stable_int(seed, key) % 100
    if kind == "number":
        return (stable_int(seed, key) % 1000) / 10
    if kind == "boolean":
        return stable_int(seed, key) % 2 == 0
    if kind == "array":
        return []
    if kind == "object":
        return _schema_object(seed, schema)
    return "".join(_words(seed + key, 2, list(WORDS), close_last=False))


def _schema_object(seed: str, schema: Any) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or not props:
        return {}
    return {key: _schema_value(seed, key, sub) for key, sub in props.items()}


def _json_text(seed: str, fmt: Any, words: int) -> str:
    obj = _schema_object(seed, fmt) if isinstance(fmt, dict) else {}
    if not obj:
        obj = {"response": "".join(_words(seed, max(words - 4, 1), list(WORDS), True))}
    return json.dumps(obj)


def _split(text: str, parts: int) -> list[str]:
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    out, pos = [], 0
    for i in range(parts):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def tool_call_for(seed: str, tools: list[Any]) -> ToolCall | None:
    """The call the fake makes: the first function tool, arguments filled from its schema."""
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters") or {}
            props = params.get("properties") if isinstance(params, dict) else None
            required = params.get("required") if isinstance(params, dict) else None
            keys = required if isinstance(required, list) and required else list(props or {})
            args = {
                k: _schema_value(seed, k, (props or {}).get(k, {}))
                for k in keys
                if isinstance(k, str)
            }
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
            n = stable_int(seed, "call")
            suffix = "".join(alphabet[(n >> (5 * i)) % 36] for i in range(8))
            return ToolCall(id=f"call_{suffix}", name=fn["name"], arguments=args)
    return None


def build_plan(
    seed: str,
    prompt_tokens: int,
    default_tokens: int,
    cap: int | None,
    *,
    think: bool = False,
    tools: list[Any] | None = None,
    fmt: Any = None,
) -> Plan:
    """Decide the pieces of a generation deterministically from the prompt seed."""
    total, hit = limit_tokens(default_tokens, cap)
    n_think = (default_tokens // 2 or default_tokens) if think else 0
    n_content = default_tokens - n_think
    pieces = [
        Piece("thinking", w)
        for w in _words(seed + "#think", n_think, list(THINK_WORDS), close_last=True)
    ]
    call = tool_call_for(seed, tools) if tools else None
    if call is not None and n_content > 0:
        cost = estimate_tokens(call.name + go_json(call.arguments))
        pieces.append(Piece("tool", tool=call, tokens=cost))
    elif fmt:
        pieces += [Piece("content", p) for p in _split(_json_text(seed, fmt, n_content), n_content)]
    else:
        pieces += [Piece("content", w) for w in _words(seed, n_content, list(WORDS), True)]
    hit = hit and total <= len(pieces)
    pieces = pieces[:total]
    return Plan(pieces, prompt_tokens, hit, seed)


def context_ids(seed: str, count: int) -> list[int]:
    """Fake llama3 token ids (0..128255) for the generate `context` field."""
    return [stable_int(seed, "ctx", str(i)) % 128256 for i in range(count)]


def prompt_tokens_generate(
    prompt: str,
    system: str = "",
    suffix: str = "",
    raw: bool = False,
    context: list[Any] | None = None,
    images: int = 0,
) -> int:
    """prompt_eval_count for /api/generate."""
    count = estimate_tokens(prompt) + len(context or [])
    if not raw:
        count += TEMPLATE_OVERHEAD
        if system:
            count += estimate_tokens(system) + MESSAGE_OVERHEAD
        if suffix:
            count += estimate_tokens(suffix) + MESSAGE_OVERHEAD
    return max(count + images * 576, 1)


def message_text(content: Any) -> str:
    """Text of a message's content (string or OpenAI content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def prompt_tokens_chat(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
    """prompt_eval_count for /api/chat: template + per-message headers + text."""
    count = TEMPLATE_OVERHEAD - MESSAGE_OVERHEAD
    for msg in messages:
        count += MESSAGE_OVERHEAD + estimate_tokens(message_text(msg.get("content")))
        count += 576 * len(msg.get("images") or [])
    if tools:
        count += estimate_tokens(go_json(tools))
    return max(count, 1)


def chat_seed(messages: list[dict[str, Any]]) -> str:
    """Seed text for a chat: the rendered conversation."""
    return "\n".join(f"{m.get('role', '')}:{message_text(m.get('content'))}" for m in messages)
