"""The application factory: one place that wires settings, listeners, middleware and routes."""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from config import Settings
from routes import setup_routes
from server.lifecycle import setup_listeners
from server.middleware import setup_errors, setup_middleware

APP_NAME = "neuronetz-gateway"


def create_app(settings: Settings, name: str = APP_NAME) -> Sanic[Any, Any]:
    """Build the gateway app for `settings` (called in each worker)."""
    app: Sanic[Any, Any] = Sanic(name, configure_logging=False)
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.RESPONSE_TIMEOUT = settings.upstream_read_timeout + 60
    app.config.REQUEST_TIMEOUT = 60
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 10
    app.config.AUTO_EXTEND = False
    app.config.OAS = False
    app.ctx.settings = settings
    app.ctx.start_hooks = []
    app.ctx.stop_hooks = []
    app.ctx.task_names = []  # background loops, cancelled when shutdown begins
    setup_listeners(app, settings)
    setup_middleware(app)
    setup_errors(app)
    setup_routes(app)
    return app


def create_app_from_env() -> Sanic[Any, Any]:
    """Factory for `sanic server.app:create_app_from_env --factory`."""
    return create_app(Settings.from_env())
