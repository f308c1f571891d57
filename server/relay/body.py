"""One reading of a request body, as Ollama will read it, and the body forwarded from it.

The body is decoded once (orjson: strict numbers, valid UTF-8, bounded depth). The fields the
gateway governs (model, stream, stream_options, the output cap, keep_alive, load-time options)
are resolved as Go resolves struct fields (see gofields), checked, and written back under their
canonical names, so what reaches Ollama is exactly what was checked, charged and audited;
everything else passes through as the client sent it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from server.accounting.estimate import prompt_tokens
from server.errors import BadRequest
from server.relay.gofields import Fields, may_repeat, repeated_keys, values
from server.relay.keepalive import capped_keep_alive
from server.relay.modelnames import check_cloud, check_server_tools

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
    ANTHROPIC_MESSAGES = "anthropic_messages"  # /v1/messages: max_tokens required
    OPENAI_RESPONSES = "openai_responses"  # /v1/responses: max_output_tokens

    @property
    def metered(self) -> bool:
        """Whether admission and settlement apply."""
        return self is not Kind.LOOKUP

    @property
    def generates(self) -> bool:
        """Whether the endpoint produces completion tokens."""
        return self in GENERATING

    @property
    def cap_field(self) -> str | None:
        """The top-level field that caps the output on this surface (native: options)."""
        return CAP_FIELDS.get(self)


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
    Kind.ANTHROPIC_MESSAGES: ("model", "stream", "max_tokens"),
    Kind.OPENAI_RESPONSES: ("model", "stream", "max_output_tokens"),
}
GENERATING = frozenset(
    {Kind.NATIVE_GENERATE, Kind.OPENAI_GENERATE, Kind.ANTHROPIC_MESSAGES, Kind.OPENAI_RESPONSES}
)
CAP_FIELDS = {
    Kind.OPENAI_GENERATE: "max_tokens",
    Kind.ANTHROPIC_MESSAGES: "max_tokens",
    Kind.OPENAI_RESPONSES: "max_output_tokens",
}
OPTION_NAMES = ("num_predict", "num_ctx", *HARDWARE_OPTIONS)


@dataclass(frozen=True, slots=True)
class Rules:
    """The operator's rules for what a tenant may ask of a shared model (from the settings)."""

    max_keep_alive: float | None = 1800.0  # seconds; None = no cap
    max_num_ctx: int | None = None
    allow_cloud: bool = False


DEFAULT_RULES = Rules()


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
    as_sent: bool  # forward equals what the client sent: its bytes may go on unchanged


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


def _refuse_repeats(raw: bytes, fields: Fields) -> None:
    """An exact governed key given twice is refused (decoders keep the last, as Go does).

    A scan of the bytes (a count per name, a search for escaped keys) decides whether the
    body has to be decoded again with every key kept; ordinary bodies of any size never are.
    """
    names = list(fields.keys)
    places: dict[str, tuple[str, ...]] = {"": tuple(names)}
    if "options" in fields.keys:
        names += ["num_predict", "num_ctx"]
        places["options"] = ("num_predict", "num_ctx")
    if "stream_options" in fields.keys:
        names.append("include_usage")
        places["stream_options"] = ("include_usage",)
    if may_repeat(raw, names):
        repeated_keys(raw, places)


def parse(raw: bytes, kind: Kind, rules: Rules = DEFAULT_RULES) -> Reading:
    """Read a body for `kind`; every bad or ambiguous governed field is a 400."""
    body = decode(raw)
    fields = Fields(body, GOVERNED[kind])
    _refuse_repeats(raw, fields)
    model = _model(fields, kind)
    check_cloud(model, rules.allow_cloud)
    if kind in (Kind.ANTHROPIC_MESSAGES, Kind.OPENAI_RESPONSES):
        for tools in values(body, "TOOLS"):
            check_server_tools(tools, rules.allow_cloud)
    stream = _stream(fields, kind)
    include_usage = _include_usage(fields)
    forward = fields.rest()
    forward["model"] = model
    if fields.has("stream"):
        forward["stream"] = fields.get("stream")
    max_output: int | None = None
    if kind in (Kind.NATIVE_GENERATE, Kind.NATIVE_EMBED):
        max_output = _native_options(fields, rules, forward)
        if fields.get("keep_alive") is not None:
            forward["keep_alive"] = capped_keep_alive(
                fields.get("keep_alive"), rules.max_keep_alive
            )
    elif kind is Kind.OPENAI_GENERATE:
        max_output = _openai_caps(fields, forward)
        if fields.has("stream_options"):
            forward["stream_options"] = {"include_usage": include_usage}
    elif kind is Kind.ANTHROPIC_MESSAGES:
        max_output = _cap(fields.get("max_tokens"), "max_tokens")
        if max_output is None:  # Ollama refuses this too
            raise BadRequest("max_tokens is required and must be positive")
        forward["max_tokens"] = max_output
    elif kind is Kind.OPENAI_RESPONSES:
        max_output = _cap(fields.get("max_output_tokens"), "max_output_tokens")
        if fields.has("max_output_tokens"):
            forward["max_output_tokens"] = (
                max_output if max_output is not None else fields.get("max_output_tokens")
            )
    return Reading(
        kind=kind,
        model=model,
        stream=stream,
        max_output=max_output if kind.generates else None,
        prompt_tokens=prompt_tokens(body),
        include_usage=include_usage,
        forward=forward,
        as_sent=forward == body and not _float_caps(fields, kind),
    )


def _float_caps(fields: Fields, kind: Kind) -> bool:
    """A /v1 cap written as a float (5.0): Go refuses it into an int, so it is rewritten."""
    names = ("max_tokens", "max_completion_tokens", "max_output_tokens")
    return kind is not Kind.NATIVE_GENERATE and any(
        isinstance(fields.get(n), float) for n in names if fields.has(n)
    )


def _native_options(fields: Fields, rules: Rules, forward: dict[str, Any]) -> int | None:
    """Write the options Ollama may see into `forward`; return the client's cap."""
    if not fields.has("options"):
        return None
    options = _options(fields, rules)
    cap = _cap(options.get("num_predict"), "options.num_predict")
    if cap is not None:
        options["num_predict"] = cap
    forward["options"] = options if fields.get("options") is not None else None
    return cap


def _openai_caps(fields: Fields, forward: dict[str, Any]) -> int | None:
    """The smaller of max_tokens and max_completion_tokens, forwarded as max_tokens."""
    caps = [_cap(fields.get(name), name) for name in ("max_tokens", "max_completion_tokens")]
    given = [c for c in caps if c is not None]
    cap = min(given) if given else None
    if cap is not None:
        forward["max_tokens"] = cap
    elif fields.has("max_tokens"):
        forward["max_tokens"] = fields.get("max_tokens")  # null or <= 0: no cap, as sent
    return cap


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
    if kind in (Kind.OPENAI_GENERATE, Kind.ANTHROPIC_MESSAGES, Kind.OPENAI_RESPONSES):
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


def upstream_body(reading: Reading, raw: bytes, output_cap: int | None) -> bytes:
    """The body sent upstream: the reading's body plus the gateway's cap and usage request.

    `output_cap` is the gateway's (from admission) or None, when the client's own applies.
    The client's bytes go on unchanged when the reading changed nothing and nothing is added.
    """
    cap = output_cap if output_cap is not None and output_cap != reading.max_output else None
    usage = reading.kind is Kind.OPENAI_GENERATE and reading.stream and not reading.include_usage
    if reading.as_sent and cap is None and not usage:
        return raw
    body = dict(reading.forward)
    field = reading.kind.cap_field
    if cap is not None and reading.kind is Kind.NATIVE_GENERATE:
        body["options"] = {**(body.get("options") or {}), "num_predict": cap}
    elif cap is not None and field is not None:
        body[field] = cap
    if usage:
        body["stream_options"] = {"include_usage": True}  # the gateway meters from it
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # orjson writes at most 254 levels; the reading took 1,024
        try:
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        except (RecursionError, ValueError) as exc:
            raise BadRequest("request body is nested too deeply") from exc
