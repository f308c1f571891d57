"""The API-key guard of every /api and /v1 route: it runs before the request body is read."""

from __future__ import annotations

from typing import Any

from sanic_routing import Route

from server.context import App, GatewayRequest

KEYED_BLUEPRINTS = frozenset({"ollama_api", "openai_v1"})


def _keyed(route: Route) -> bool:
    """Whether a route is behind the key (a route of the /api or /v1 blueprints)."""
    parts = route.name.split(".")
    return len(parts) > 2 and parts[1] in KEYED_BLUEPRINTS


def setup_guard(app: App) -> None:
    """Authenticate right after routing, so a request without a valid key never sends its body."""

    async def guard(request: GatewayRequest, route: Route, **_: Any) -> None:
        if not _keyed(route):
            return
        headers = request.headers
        request.ctx.principal = await request.app.ctx.worker.auth.authenticate(
            headers.get("authorization"),
            api_key=headers.get("x-api-key"),
            client=request.remote_addr or request.ip,
        )

    app.add_signal(guard, "http.routing.after")
