"""The API-key guard in front of every /api and /v1 route."""

from __future__ import annotations

from sanic import Request

from server.context import services, state


async def require_key(request: Request) -> None:
    """Authenticate the caller and keep the principal on the request."""
    auth = services(request.app).auth
    state(request).principal = await auth.authenticate(request.headers.get("authorization"))
