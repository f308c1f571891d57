"""Thin blueprints: health, the block list, the native /api and OpenAI-compatible /v1 surfaces."""

from __future__ import annotations

from sanic import Blueprint

from routes import health, ollama, openai, usage
from routes.blocklist import setup_blocklist
from routes.guard import require_key
from server.context import App


def setup_routes(app: App) -> None:
    """Register every route; /api and /v1 are behind the API-key guard."""
    setup_blocklist(app)
    health.register(app)
    api = Blueprint("ollama_api", url_prefix="/api")
    v1 = Blueprint("openai_v1", url_prefix="/v1")
    for bp in (api, v1):
        bp.on_request(require_key, priority=50)
    usage.register(api, v1)
    ollama.register(app, api)
    openai.register(app, v1)
    app.blueprint(api)
    app.blueprint(v1)
