"""Model listing and management: /, version, tags, show, ps, pull, push, create, copy, delete, blobs."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from typing import Any

from sanic import HTTPResponse, Request

from . import structs
from .models import ModelSpec, guess_spec, parse_name, ps_entry, renamed, show_body, tags_entry
from .records import note
from .state import State
from .util import go_json_bytes
from .web import (
    CT_JSON,
    CT_NDJSON,
    CT_TEXT_UTF8,
    ApiError,
    decode_request,
    json_response,
    raw,
    send_json,
)

DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")
INVALID_NAME = "invalid model name"


async def root(request: Request, state: State) -> HTTPResponse:
    """GET|HEAD /."""
    return raw(b"Ollama is running", 200, CT_TEXT_UTF8)


async def version(request: Request, state: State) -> HTTPResponse:
    """GET|HEAD /api/version."""
    return json_response({"version": state.config.version})


async def tags(request: Request, state: State) -> HTTPResponse | None:
    """GET|HEAD /api/tags, newest first."""
    specs = sorted(state.installed.values(), key=lambda s: s.modified_ns, reverse=True)
    return await send_json(request, {"models": [tags_entry(s) for s in specs]})


async def show(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/show."""
    body = decode_request(request, structs.SHOW)
    name: str = body.get("model") or body.get("name") or ""
    note(request, model=name)
    if not name:
        raise ApiError(400, "model is required")
    ref = parse_name(name)
    if ref is None:
        raise ApiError(400, INVALID_NAME)
    spec = state.lookup(name)
    if spec is None:
        raise ApiError(404, f"model '{ref.short}' not found")
    return await send_json(request, show_body(spec))


async def ps(request: Request, state: State) -> HTTPResponse | None:
    """GET /api/ps."""
    models = [ps_entry(m.spec, m.expires_ns, m.context_length) for m in state.running()]
    return await send_json(request, {"models": models})


async def progress(
    request: Request, state: State, events: list[dict[str, Any]], stream: bool
) -> HTTPResponse | None:
    """Stream progress objects as NDJSON, or return the last one (waitForStream)."""
    if not stream:
        last = events[-1]
        status = 500 if "error" in last else 200
        return raw(go_json_bytes(last), status, CT_JSON)
    response = await request.respond(content_type=CT_NDJSON)
    for index, event in enumerate(events):
        if index and state.config.pace_ms:
            await asyncio.sleep(state.config.pace_ms / 1000)
        await response.send(go_json_bytes(event, newline=True))
    await response.eof()
    return None


def _layers(spec: ModelSpec) -> list[tuple[str, int]]:
    extra = [
        hashlib.sha256(f"{spec.name}:{kind}".encode()).hexdigest()
        for kind in ("template", "license", "params")
    ]
    sizes = [1429, 7711, 96]
    return [(f"sha256:{spec.digest}", spec.size - sum(sizes))] + [
        (f"sha256:{d}", s) for d, s in zip(extra, sizes, strict=True)
    ]


def _transfer(verb: str, spec: ModelSpec, done_already: bool) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for digest, total in _layers(spec):
        status = f"{verb} {digest[7:19]}"
        steps = [total] if done_already else [0, total // 2, total]
        for completed in steps:
            event: dict[str, Any] = {"status": status, "digest": digest, "total": total}
            if completed:
                event["completed"] = completed
            events.append(event)
    return events


def _name_of(request: Request, body: dict[str, Any]) -> str:
    name: str = body.get("model") or body.get("name") or ""
    note(request, model=name, stream=body.get("stream") is not False)
    if parse_name(name) is None:
        raise ApiError(400, INVALID_NAME)
    return name


async def pull(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/pull: fake registry download."""
    body = decode_request(request, structs.PULL)
    name = _name_of(request, body)
    stream = body.get("stream") is not False
    spec = state.pullable(name)
    events: list[dict[str, Any]] = [{"status": "pulling manifest"}]
    if spec is None:
        events.append({"error": "pull model manifest: file does not exist"})
        return await progress(request, state, events, stream)
    present = spec.name in state.installed
    events += _transfer("pulling", spec, present)
    events += [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    if not present:
        state.installed[spec.name] = renamed(spec, spec.name, time.time_ns())
    return await progress(request, state, events, stream)


async def push(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/push: fake registry upload."""
    body = decode_request(request, structs.PUSH)
    name = _name_of(request, body)
    stream = body.get("stream") is not False
    spec = state.lookup(name)
    events: list[dict[str, Any]] = [{"status": "retrieving manifest"}]
    ref = parse_name(name)
    if spec is None or ref is None:
        path = f"/root/.ollama/models/manifests/{ref.full.replace(':', '/') if ref else name}"
        events.append({"error": f"open {path}: no such file or directory"})
        return await progress(request, state, events, stream)
    events += _transfer("pushing", spec, False)
    events += [{"status": "pushing manifest"}, {"status": "success"}]
    return await progress(request, state, events, stream)


async def create(request: Request, state: State) -> HTTPResponse | None:
    """POST /api/create: derive a model from `from` or uploaded blobs."""
    body = decode_request(request, structs.CREATE)
    name = _name_of(request, body)
    stream = body.get("stream") is not False
    base_name, files = body.get("from"), body.get("files")
    events: list[dict[str, Any]] = []
    if isinstance(base_name, str) and base_name:
        base = state.lookup(base_name) or state.pullable(base_name)
        if base is None:
            events = [{"error": "pull model manifest: file does not exist"}]
            return await progress(request, state, events, stream)
        events.append({"status": f"using existing layer sha256:{base.digest}"})
    elif isinstance(files, dict) and files:
        missing = [d for d in files.values() if _blob_key(str(d)) not in state.blobs]
        if missing:
            raise ApiError(400, f"missing blob {missing[0]}")
        events += [{"status": f"using existing layer {_blob_key(str(d))}"} for d in files.values()]
        base = guess_spec(name)
    else:
        raise ApiError(400, "neither 'from' or 'files' was specified")
    extras = {
        k: body[k]
        for k in ("system", "template", "parameters", "license", "messages")
        if body.get(k)
    }
    if extras:
        layer = hashlib.sha256(go_json_bytes(extras)).hexdigest()
        events.append({"status": f"creating new layer sha256:{layer}"})
    events += [{"status": "writing manifest"}, {"status": "success"}]
    canonical = parse_name(name).canonical  # type: ignore[union-attr]
    state.installed[canonical] = renamed(base, canonical, time.time_ns())
    return await progress(request, state, events, stream)


async def copy(request: Request, state: State) -> HTTPResponse:
    """POST /api/copy."""
    body = decode_request(request, structs.COPY)
    source, dest = body.get("source", ""), body.get("destination", "")
    note(request, model=source)
    if parse_name(source) is None:
        raise ApiError(400, f'source "{source}" is invalid')
    dest_ref = parse_name(dest)
    if dest_ref is None:
        raise ApiError(400, f'destination "{dest}" is invalid')
    spec = state.lookup(source)
    if spec is None:
        raise ApiError(404, f'model "{source}" not found')
    state.installed[dest_ref.canonical] = renamed(spec, dest_ref.canonical, time.time_ns())
    return raw(b"", 200)


async def delete(request: Request, state: State) -> HTTPResponse:
    """DELETE /api/delete (JSON body)."""
    body = decode_request(request, structs.DELETE)
    name = _name_of(request, body)
    spec = state.lookup(name)
    if spec is None:
        raise ApiError(404, f"model '{name}' not found")
    state.installed.pop(spec.name, None)
    state.loaded.pop(spec.name, None)
    return raw(b"", 200)


def _blob_key(digest: str) -> str:
    match = DIGEST_RE.match(digest)
    if not match:
        raise ApiError(400, "invalid digest format")
    return f"sha256:{match.group(1).lower()}"


async def blob(request: Request, state: State, digest: str) -> HTTPResponse:
    """HEAD|POST /api/blobs/:digest."""
    key = _blob_key(digest)
    if request.method == "HEAD":
        return raw(b"", 200 if key in state.blobs else 404)
    actual = f"sha256:{hashlib.sha256(request.body).hexdigest()}"
    if actual != key:
        raise ApiError(400, f'digest mismatch, expected "{key}", got "{actual}"')
    if key in state.blobs:
        return raw(b"", 200)
    state.blobs[key] = len(request.body)
    return raw(b"", 201)
