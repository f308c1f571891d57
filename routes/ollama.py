"""The native Ollama surface (/api): relayed endpoints on the allow-list, and `GET|HEAD /`."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, text

from routes.relayed import json_answer, listing, relayed
from server.context import App, GatewayRequest
from server.relay.body import Kind
from server.relay.pipeline import Target

RELAYED: dict[str, Kind | None] = {
    "generate": Kind.NATIVE_GENERATE,
    "chat": Kind.NATIVE_GENERATE,
    "embed": Kind.NATIVE_EMBED,
    "embeddings": Kind.NATIVE_EMBED,
    "show": Kind.LOOKUP,
}


async def root(request: GatewayRequest) -> HTTPResponse:
    """What Ollama answers on `/` (health checks and the Go CLI's heartbeat use it)."""
    return text("Ollama is running", content_type="text/plain; charset=utf-8")


async def tags(request: GatewayRequest) -> HTTPResponse:
    """Installed models over every healthy backend, limited to the key's models."""
    return json_answer({"models": await listing(request, "/api/tags", "models")})


async def ps(request: GatewayRequest) -> HTTPResponse:
    """Loaded models over every healthy backend, limited to the key's models."""
    return json_answer({"models": await listing(request, "/api/ps", "models")})


def register(app: App, api: Blueprint) -> None:
    """Add the /api routes to the blueprint behind the key guard, and `/` to the app."""
    app.add_route(root, "/", methods=["GET", "HEAD"], name="ollama_root")
    for name, kind in RELAYED.items():
        handler = relayed(Target(f"/api/{name}", kind))
        api.add_route(handler, f"/{name}", methods=["POST"], name=f"api_{name}")
    api.add_route(
        relayed(Target("/api/version")), "/version", methods=["GET", "HEAD"], name="api_version"
    )
    api.add_route(tags, "/tags", methods=["GET", "HEAD"], name="api_tags")
    api.add_route(ps, "/ps", methods=["GET"], name="api_ps")
