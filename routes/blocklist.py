"""Model-changing endpoints, closed for good: 403 before auth, however the path is spelled."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from sanic import HTTPResponse

from server.context import App, GatewayRequest
from server.errors import Forbidden, error_response

BLOCKED = frozenset({"/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete"})
BLOCKED_TREE = "/api/blobs"
MESSAGE = "this endpoint is disabled on this gateway: models cannot be pulled, pushed, created, copied or deleted through it"


def normalise(path: str) -> str:
    """Case-fold, percent-decode (repeatedly), collapse slashes, resolve dot segments."""
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = path.replace("\\", "/").lower()
    path = posixpath.normpath("/" + path)
    return "/" + path.lstrip("/")


def is_blocked(path: str) -> bool:
    """Whether a raw request path names a blocked endpoint."""
    norm = normalise(path)
    return norm in BLOCKED or norm == BLOCKED_TREE or norm.startswith(BLOCKED_TREE + "/")


def setup_blocklist(app: App) -> None:
    """Refuse blocked paths for every method, before authentication."""

    async def block(request: GatewayRequest) -> HTTPResponse | None:
        raw = request.raw_url.decode("latin-1").split("?", 1)[0]
        if is_blocked(raw):
            request.ctx.error = "blocked_endpoint"
            return error_response("/api", Forbidden(MESSAGE))
        return None

    app.register_middleware(block, "request", priority=90)
