"""Sanic application: routing table, 404/405, request recording, auth toggle, error shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from sanic import HTTPResponse, Request, Sanic

from . import anthropic, control, embeddings, management, native, openai_compat, responses
from .gofold import fold_name
from .records import note, record
from .state import Config, State
from .web import (
    CT_JSON_UTF8,
    CT_TEXT,
    ApiError,
    anthropic_error,
    json_response,
    native_error,
    openai_error,
    raw,
)

Handler = Callable[..., Awaitable[HTTPResponse | None]]
GET, POST, HEAD = "GET", "POST", "HEAD"
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


async def status(request: Request, state: State) -> HTTPResponse:
    """GET /api/status."""
    return json_response({"cloud": {"disabled": False, "source": "none"}})


ROUTES: dict[str, dict[str, Handler]] = {
    "/": {GET: management.root, HEAD: management.root},
    "/api/version": {GET: management.version, HEAD: management.version},
    "/api/status": {GET: status},
    "/api/tags": {GET: management.tags, HEAD: management.tags},
    "/api/show": {POST: management.show},
    "/api/ps": {GET: management.ps},
    "/api/generate": {POST: native.generate},
    "/api/chat": {POST: native.chat},
    "/api/embed": {POST: embeddings.embed},
    "/api/embeddings": {POST: embeddings.embeddings},
    "/api/pull": {POST: management.pull},
    "/api/push": {POST: management.push},
    "/api/create": {POST: management.create},
    "/api/copy": {POST: management.copy},
    "/api/delete": {"DELETE": management.delete},
    "/v1/chat/completions": {POST: openai_compat.chat_completions},
    "/v1/completions": {POST: openai_compat.completions},
    "/v1/embeddings": {POST: openai_compat.embeddings},
    "/v1/models": {GET: openai_compat.list_models},
    "/v1/responses": {POST: responses.responses},
    "/v1/messages": {POST: anthropic.messages},
}
PARAM_ROUTES: dict[str, dict[str, Handler]] = {
    "/api/blobs/": {HEAD: management.blob, POST: management.blob},
    "/v1/models/": {GET: openai_compat.retrieve_model},
}


def resolve(path: str) -> tuple[dict[str, Handler], tuple[str, ...]] | None:
    """Find the handlers for a path and any path parameter."""
    if path in ROUTES:
        return ROUTES[path], ()
    for prefix, handlers in PARAM_ROUTES.items():
        rest = path[len(prefix) :]
        if path.startswith(prefix) and rest and "/" not in rest:
            return handlers, (rest,)
    return None


def authorised(request: Request, state: State) -> bool:
    """True unless require_token is set and the bearer token does not match."""
    token = state.config.require_token
    return not token or request.headers.get("authorization", "") == f"Bearer {token}"


async def handle(request: Request, **_: Any) -> HTTPResponse | None:
    """Single entry point for every request."""
    state: State = request.app.ctx.state
    path = unquote(request.path)
    if path.startswith("/_fake/"):
        return await control.handle(request, state, path)
    record(request, state, path)
    state.load.enter(path)
    try:
        return await _dispatch(request, state, path)
    finally:
        state.load.leave(path)


async def _dispatch(request: Request, state: State, path: str) -> HTTPResponse | None:
    if request.method == "OPTIONS" and request.headers.get("origin"):
        return raw(b"", 204)
    if path != "/" and path.endswith("/") and resolve(path.rstrip("/")):
        target = path.rstrip("/")
        response = raw(b"", 301 if request.method == GET else 307)
        response.headers["location"] = target
        return response
    if not authorised(request, state):
        return json_response({"error": "unauthorized"}, 401)
    found = resolve(path)
    if found is None:
        return raw(b"404 page not found", 404, CT_TEXT)
    handlers, params = found
    handler = handlers.get(request.method)
    if handler is None:
        return raw(b"405 method not allowed", 405, CT_TEXT)
    try:
        return await handler(request, state, *params)
    except ApiError as err:
        status, message, content_type = err.status, err.message, err.content_type
    except (TypeError, ValueError, KeyError, AttributeError) as err:  # odd input: still JSON
        status, message, content_type = 500, f"fake-ollama: {err!r}", CT_JSON_UTF8
    note(request, status=status, error=message)
    if path == "/v1/messages":
        return anthropic_error(status, message, content_type)
    if path.startswith("/v1/"):
        return openai_error(status, message, content_type)
    return native_error(status, message, content_type)


def create_app(config: Config, name: str = "fake_ollama") -> Sanic[Any, Any]:
    """Build the Sanic app around a fresh State."""
    app: Sanic[Any, Any] = Sanic(name)
    app.config.AUTO_EXTEND = False
    app.config.RESPONSE_TIMEOUT = 24 * 3600
    app.config.REQUEST_TIMEOUT = 600
    app.config.KEEP_ALIVE_TIMEOUT = 120
    app.config.REQUEST_MAX_SIZE = 1 << 34
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 0.5
    app.config.NOISY_EXCEPTIONS = False
    app.ctx.state = State(config)
    app.add_route(handle, "/", methods=ALL_METHODS, name="root")

    @app.before_server_start
    async def warm_case_folding(*_: Any) -> None:
        fold_name("\u017f")  # builds the fold table now, not on the first non-ASCII key

    app.add_route(handle, "/<rest:path>", methods=ALL_METHODS, name="any")
    return app
