"""Thin blueprints: health, the block list, the native /api and OpenAI-compatible /v1 surfaces."""

from __future__ import annotations

from sanic import Blueprint

from routes import health, ollama, openai, usage
from routes.blocklist import setup_blocklist
from routes.guard import setup_guard
from server.context import App


def setup_routes(app: App) -> None:
    """Register every route; /api and /v1 are behind the API-key guard (before the body)."""
    setup_blocklist(app)
    setup_guard(app)
    health.register(app)
    api = Blueprint("ollama_api", url_prefix="/api")
    v1 = Blueprint("openai_v1", url_prefix="/v1")
    usage.register(api, v1)
    ollama.register(app, api)
    openai.register(app, v1)
    app.blueprint(api)
    app.blueprint(v1)
