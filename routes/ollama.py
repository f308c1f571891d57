"""The native Ollama surface (/api): relayed endpoints on the allow-list, and `GET|HEAD /`."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request, Sanic, text

from routes.relayed import json_answer, listing, relayed
from server.relay import Target
from server.relay_setup import setup_relay
from server.requests import Kind

RELAYED: dict[str, Kind | None] = {
    "generate": Kind.NATIVE_GENERATE,
    "chat": Kind.NATIVE_GENERATE,
    "embed": Kind.NATIVE_EMBED,
    "embeddings": Kind.NATIVE_EMBED,
    "show": Kind.LOOKUP,
}


async def root(request: Request) -> HTTPResponse:
    """What Ollama answers on `/` (health checks and the Go CLI's heartbeat use it)."""
    return text("Ollama is running", content_type="text/plain; charset=utf-8")


async def tags(request: Request) -> HTTPResponse:
    """Installed models over every healthy backend, limited to the key's models."""
    return json_answer({"models": await listing(request, "/api/tags", "models")})


async def ps(request: Request) -> HTTPResponse:
    """Loaded models over every healthy backend, limited to the key's models."""
    return json_answer({"models": await listing(request, "/api/ps", "models")})


def register(app: Sanic[Any, Any], api: Blueprint) -> None:
    """Add the /api routes to the blueprint behind the key guard, and `/` to the app."""
    setup_relay(app)
    app.add_route(root, "/", methods=["GET", "HEAD"], name="ollama_root")
    for name, kind in RELAYED.items():
        handler = relayed(Target(f"/api/{name}", kind))
        api.add_route(handler, f"/{name}", methods=["POST"], name=f"api_{name}")
    api.add_route(
        relayed(Target("/api/version")), "/version", methods=["GET", "HEAD"], name="api_version"
    )
    api.add_route(tags, "/tags", methods=["GET", "HEAD"], name="api_tags")
    api.add_route(ps, "/ps", methods=["GET"], name="api_ps")
