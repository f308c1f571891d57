"""The API-key guard in front of every /api and /v1 route."""

from __future__ import annotations

from server.context import GatewayRequest


async def require_key(request: GatewayRequest) -> None:
    """Authenticate the caller and keep the principal on the request."""
    auth = request.app.ctx.worker.auth
    request.ctx.principal = await auth.authenticate(request.headers.get("authorization"))
