"""What the gateway reads from a request body (model, stream, output cap, prompt size)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from server.accounting.meter import estimate_tokens
from server.errors import BadRequest

MESSAGE_OVERHEAD = 5
TEMPLATE_OVERHEAD = 20


class Kind(Enum):
    """What a relayed endpoint does, which decides defaults and accounting."""

    NATIVE_GENERATE = "native_generate"  # /api/generate, /api/chat: stream by default
    NATIVE_EMBED = "native_embed"  # /api/embed, /api/embeddings: prompt tokens only
    OPENAI_GENERATE = "openai_generate"  # /v1/chat/completions, /v1/completions
    OPENAI_EMBED = "openai_embed"  # /v1/embeddings
    LOOKUP = "lookup"  # /api/show: names a model, not metered

    @property
    def metered(self) -> bool:
        """Whether admission and settlement apply."""
        return self is not Kind.LOOKUP

    @property
    def generates(self) -> bool:
        """Whether the endpoint produces completion tokens."""
        return self in (Kind.NATIVE_GENERATE, Kind.OPENAI_GENERATE)


@dataclass(frozen=True, slots=True)
class Reading:
    """A request body and what the gateway read from it."""

    kind: Kind
    body: dict[str, Any]
    model: str
    stream: bool
    max_output: int | None
    prompt_tokens: int  # estimate
    include_usage: bool  # the client asked for the /v1 usage chunk


def parse(raw: bytes, kind: Kind) -> Reading:
    """Read the body; invalid JSON, a non-object or a missing model is a 400."""
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON in request body: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    model = body.get("model") if kind is not Kind.LOOKUP else body.get("model") or body.get("name")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model is required")
    return Reading(
        kind=kind,
        body=body,
        model=model,
        stream=_stream(body, kind),
        max_output=_max_output(body, kind),
        prompt_tokens=_prompt_tokens(body),
        include_usage=_include_usage(body),
    )


def _stream(body: dict[str, Any], kind: Kind) -> bool:
    value = body.get("stream")
    if kind is Kind.NATIVE_GENERATE:
        return value is not False
    if kind is Kind.OPENAI_GENERATE:
        return value is True
    return False


def _positive(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def _max_output(body: dict[str, Any], kind: Kind) -> int | None:
    if kind is Kind.NATIVE_GENERATE:
        options = body.get("options")
        return _positive(options.get("num_predict")) if isinstance(options, dict) else None
    if kind is Kind.OPENAI_GENERATE:
        cap = _positive(body.get("max_completion_tokens"))
        return cap if cap is not None else _positive(body.get("max_tokens"))
    return None


def _text_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    if isinstance(value, dict):
        text = value.get("text")
        return len(text) if isinstance(text, str) else 0
    return 0


def _prompt_tokens(body: dict[str, Any]) -> int:
    chars = sum(_text_size(body.get(k)) for k in ("prompt", "system", "suffix", "input"))
    messages = body.get("messages")
    count = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                chars += _text_size(message.get("content"))
                count += 1
    return estimate_tokens(chars) + TEMPLATE_OVERHEAD + MESSAGE_OVERHEAD * count


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def upstream_body(parsed: Reading, raw: bytes, output_cap: int | None) -> bytes:
    """The body to send upstream: the client's bytes unless a field must change."""
    kind = parsed.kind
    body = parsed.body
    changed = False
    if output_cap is not None:
        body = dict(body)
        if kind is Kind.NATIVE_GENERATE:
            options = body.get("options")
            body["options"] = {**(options if isinstance(options, dict) else {})}
            body["options"]["num_predict"] = output_cap
        else:
            body["max_tokens"] = output_cap
            body.pop("max_completion_tokens", None)
        changed = True
    if kind is Kind.OPENAI_GENERATE and parsed.stream and not parsed.include_usage:
        body = dict(body)
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {})}
        body["stream_options"]["include_usage"] = True
        changed = True
    if not changed:
        return raw
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
