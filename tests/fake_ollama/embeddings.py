"""Deterministic embeddings: /api/embed and the legacy /api/embeddings."""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

from sanic import HTTPResponse, Request

from . import structs
from .models import ModelSpec
from .native import context_length, run_options
from .records import note
from .schedule import BEFORE_FIRST_MESSAGE, Tracker, scheduled
from .state import State
from .util import estimate_tokens, float32, stable_int
from .web import ApiError, decode_request, json_response, send_json


def vector(
    spec: ModelSpec, text: str, dimensions: int | None = None, normalize: bool = True
) -> list[float]:
    """A pseudo-random vector seeded from (model, text); L2-normalised float32 by default."""
    rng = random.Random(stable_int("embed", spec.name, text))
    values = [rng.gauss(0.0, 1.0) for _ in range(spec.embedding_length)]
    if dimensions and 0 < dimensions < len(values):
        values = values[:dimensions]
    if not normalize:
        return [v * 0.5 for v in values]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [float32(v / norm) for v in values]


def not_found(model: str) -> ApiError:
    """handleScheduleError's not-found message."""
    return ApiError(404, f'model "{model}" not found, try pulling it first')


def parse_inputs(value: Any, error: str) -> list[str]:
    """`input` as a list of strings ("" and [] mean no input)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ApiError(400, error)


async def embed_core(
    request: Request,
    state: State,
    spec: ModelSpec,
    model: str,
    inputs: list[str],
    body: dict[str, Any],
) -> tuple[list[list[float]], int, dict[str, int]]:
    """Schedule (with faults), then compute vectors; returns (vectors, tokens, timings)."""
    tracker = Tracker(request, state, model, stream=False)
    note(
        request, model=model, stream=False, keep_alive_ns=body.get("keep_alive"), outcome="running"
    )
    options = run_options(request, body.get("options"))
    started = time.monotonic_ns()
    try:
        async with scheduled(request, state) as fault:
            if fault is not None:
                raise ApiError(*fault)
            if state.config.fault == "error_before_first":
                note(request, outcome="error", status=500)
                raise ApiError(500, BEFORE_FIRST_MESSAGE)
    except asyncio.CancelledError:
        tracker.record()
        raise
    load_ns = time.monotonic_ns() - started + 1_019_500
    state.touch(spec, body.get("keep_alive"), context_length(spec, options))
    counts = [estimate_tokens(text) + 2 for text in inputs]
    if body.get("truncate") is False and any(c > spec.context_length for c in counts):
        raise ApiError(400, "the input length exceeds the context length")
    dims = body.get("dimensions") or None
    vectors = [vector(spec, text, dims) for text in inputs]
    tokens = sum(min(c, spec.context_length) for c in counts)
    note(request, prompt_eval_count=tokens, eval_count=0, generated=0, outcome="done")
    total = time.monotonic_ns() - started + load_ns + tokens * 250_000
    return vectors, tokens, {"total_duration": total, "load_duration": load_ns}


async def embed(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/embed."""
    body = decode_request(request, structs.EMBED)
    model: str = body.get("model", "")
    note(request, model=model, stream=False)
    if not model:
        raise ApiError(404, "model '' not found")
    inputs = parse_inputs(body.get("input"), "invalid input type")
    spec = state.lookup(model)
    if spec is None:
        raise not_found(model)
    vectors, tokens, timing = await embed_core(request, state, spec, model, inputs, body)
    if not inputs:
        return json_response({"model": model, "embeddings": []})
    out: dict[str, Any] = {
        "model": model,
        "embeddings": vectors,
        **timing,
        "prompt_eval_count": tokens,
    }
    return await send_json(request, out)


async def embeddings(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/embeddings (legacy, unnormalised float64)."""
    body = decode_request(request, structs.EMBEDDING)
    model: str = body.get("model", "")
    note(request, model=model, stream=False)
    if not model:
        raise ApiError(400, "model is required")
    spec = state.lookup(model)
    if spec is None:
        raise not_found(model)
    prompt: str = body.get("prompt", "")
    await embed_core(request, state, spec, model, [], body)
    values = vector(spec, prompt, normalize=False) if prompt else []
    return await send_json(request, {"embedding": values})
