"""One reading of a request body, as Ollama will read it, and the body forwarded from it.

The body is decoded once (orjson: strict numbers, valid UTF-8, bounded depth). The fields the
gateway governs (model, stream, stream_options, the output cap, keep_alive, load-time options)
are resolved as Go resolves struct fields (see gofields), checked, and written back under their
canonical names, so what reaches Ollama is exactly what was checked, charged and audited;
everything else passes through as the client sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from server.accounting.estimate import prompt_tokens
from server.errors import BadRequest
from server.relay.gofields import Fields, may_repeat, repeated_keys
from server.relay.keepalive import capped_keep_alive
from server.relay.modelnames import check_cloud

# Load-time options that decide how one shared model is loaded for everyone: never forwarded.
HARDWARE_OPTIONS = ("num_gpu", "main_gpu", "num_thread", "use_mmap", "low_vram", "numa")
CAP_CEILING = 2**31 - 1  # a larger cap means no cap, as Ollama reads it; forwarded as this


class Kind(Enum):
    """What a relayed endpoint does, which decides its fields, defaults and accounting."""

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


GOVERNED: dict[Kind, tuple[str, ...]] = {
    Kind.NATIVE_GENERATE: ("model", "stream", "options", "keep_alive"),
    Kind.NATIVE_EMBED: ("model", "options", "keep_alive"),
    Kind.LOOKUP: ("model", "name"),
    Kind.OPENAI_GENERATE: (
        "model",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
    ),
    Kind.OPENAI_EMBED: ("model",),
}
OPTION_NAMES = ("num_predict", "num_ctx", *HARDWARE_OPTIONS)


@dataclass(frozen=True, slots=True)
class Rules:
    """The operator's rules for what a tenant may ask of a shared model (from the settings)."""

    max_keep_alive: float | None = 1800.0  # seconds; None = no cap
    max_num_ctx: int | None = None
    allow_cloud: bool = False


@dataclass(frozen=True, slots=True)
class Reading:
    """What the gateway decided a body says, and the body to forward (minus cap and usage)."""

    kind: Kind
    model: str
    stream: bool
    max_output: int | None  # the client's own output cap (None: none, as Ollama reads it)
    prompt_tokens: int  # estimate
    include_usage: bool  # the client asked for the /v1 usage chunk
    forward: dict[str, Any]  # the body as it goes upstream, governed fields canonical


def decode(raw: bytes) -> dict[str, Any]:
    """The body as one JSON object; anything else is a 400 that says what was wrong."""
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON in request body: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def parse(raw: bytes, kind: Kind, rules: Rules = Rules()) -> Reading:
    """Read a body for `kind`; every bad or ambiguous governed field is a 400."""
    body = decode(raw)
    governed = GOVERNED[kind]
    if may_repeat(raw, (*governed, *OPTION_NAMES, "include_usage")):
        places = {"": governed, "options": OPTION_NAMES, "stream_options": ("include_usage",)}
        repeated_keys(raw, places)
    fields = Fields(body, governed)
    forward = fields.rest()
    model = _model(fields, kind)
    check_cloud(model, rules.allow_cloud)
    forward["model"] = model
    stream = _stream(fields, kind)
    if kind in (Kind.NATIVE_GENERATE, Kind.OPENAI_GENERATE):
        forward["stream"] = stream
    max_output: int | None = None
    if kind in (Kind.NATIVE_GENERATE, Kind.NATIVE_EMBED):
        options = _options(fields, rules)
        max_output = _cap(options.pop("num_predict", None), "options.num_predict")
        if options or fields.has("options"):
            forward["options"] = options
        if fields.get("keep_alive") is not None:
            keep = capped_keep_alive(fields.get("keep_alive"), rules.max_keep_alive)
            forward["keep_alive"] = keep
    elif kind is Kind.OPENAI_GENERATE:
        caps = [_cap(fields.get(name), name) for name in ("max_tokens", "max_completion_tokens")]
        given = [c for c in caps if c is not None]
        max_output = min(given) if given else None
    return Reading(
        kind=kind,
        model=model,
        stream=stream,
        max_output=max_output if kind.generates else None,
        prompt_tokens=prompt_tokens(body),
        include_usage=_include_usage(fields),
        forward=forward,
    )


def _model(fields: Fields, kind: Kind) -> str:
    model = fields.get("model")
    if kind is Kind.LOOKUP and (model is None or model == ""):
        model = fields.get("name")  # /api/show falls back to the deprecated `name`
    if model is not None and not isinstance(model, str):
        raise BadRequest("model must be a string")
    if not model or not model.strip():
        raise BadRequest("model is required")
    return model


def _stream(fields: Fields, kind: Kind) -> bool:
    value = fields.get("stream")
    if value is not None and not isinstance(value, bool):
        raise BadRequest("stream must be true or false")
    if kind is Kind.NATIVE_GENERATE:
        return value is not False
    if kind is Kind.OPENAI_GENERATE:
        return value is True
    return False


def _options(fields: Fields, rules: Rules) -> dict[str, Any]:
    """The options map as Ollama's FromMap reads it (exact keys), hardware options dropped."""
    value = fields.get("options")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("options must be a JSON object")
    options = {k: v for k, v in value.items() if k not in HARDWARE_OPTIONS}
    num_ctx = options.get("num_ctx")
    if num_ctx is not None:
        if isinstance(num_ctx, bool) or not isinstance(num_ctx, (int, float)):
            raise BadRequest("options.num_ctx must be a whole number")
        if rules.max_num_ctx is not None and int(num_ctx) > rules.max_num_ctx:
            raise BadRequest(
                f"options.num_ctx {int(num_ctx)} is above this gateway's maximum "
                f"({rules.max_num_ctx})"
            )
    return options


def _cap(value: Any, name: str) -> int | None:
    """An output cap as Ollama reads it: None or <= 0 is no cap; a non-integer is a 400."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be a whole number of tokens")
    if isinstance(value, float) and not value.is_integer():
        raise BadRequest(f"{name} must be a whole number of tokens, not {value}")
    cap = int(value)
    if cap <= 0:
        return None
    return min(cap, CAP_CEILING)


def _include_usage(fields: Fields) -> bool:
    value = fields.get("stream_options")
    if value is None:
        return False
    if not isinstance(value, dict):
        raise BadRequest("stream_options must be a JSON object")
    inner = Fields(value, ("include_usage",), where="stream_options.")
    usage = inner.get("include_usage")
    if usage is not None and not isinstance(usage, bool):
        raise BadRequest("stream_options.include_usage must be true or false")
    return usage is True


def upstream_body(reading: Reading, output_cap: int | None) -> bytes:
    """The body sent upstream: the reading's body plus the decided output cap and usage request.

    `output_cap` is the gateway's (from admission) or None; the client's own cap applies then.
    """
    body = dict(reading.forward)
    cap = output_cap if output_cap is not None else reading.max_output
    if reading.kind in (Kind.NATIVE_GENERATE, Kind.NATIVE_EMBED):
        if cap is not None and reading.kind.generates:
            body["options"] = {**body.get("options", {}), "num_predict": cap}
    elif reading.kind is Kind.OPENAI_GENERATE:
        if cap is not None:
            body["max_tokens"] = cap
        if reading.stream:
            body["stream_options"] = {"include_usage": True}  # the gateway meters from it
    try:
        return orjson.dumps(body)
    except TypeError as exc:  # orjson refuses to write more than 254 levels
        raise BadRequest("request body is nested too deeply") from exc
