"""The application factory: one place that wires settings, listeners, middleware and routes."""

from __future__ import annotations

from typing import cast

import httpx
from sanic import Request, Sanic
from sanic.config import Config

from config import Settings
from limits import LimitsBackend
from routes import setup_routes
from server.context import App, AppContext, GatewayRequest
from server.http.middleware import setup_errors, setup_middleware
from server.lifecycle import setup_listeners

APP_NAME = "neuronetz-gateway"


def create_app(
    settings: Settings,
    *,
    limits: LimitsBackend | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    name: str = APP_NAME,
) -> App:
    """Build the gateway app for `settings` (called in each worker).

    `limits` and `transport` replace the limits backend and the network to the backends, so
    the whole hot path can run in one process in tests.
    """
    ctx = AppContext(settings=settings, limits=limits, transport=transport)
    app: App = Sanic(
        name,
        config=Config(),
        ctx=ctx,
        request_class=cast("type[Request]", GatewayRequest),
        configure_logging=False,
    )
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.RESPONSE_TIMEOUT = int(settings.upstream_read_timeout) + 60
    app.config.REQUEST_TIMEOUT = int(settings.request_timeout)
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.graceful_shutdown_timeout
    app.config.PROXIES_COUNT = settings.proxies_count  # trusted hops: the client address
    app.config.AUTO_EXTEND = False
    app.config.OAS = False
    setup_listeners(app)
    setup_middleware(app)
    setup_errors(app)
    setup_routes(app)
    return app


def create_app_from_env() -> App:
    """Factory for `sanic server.app:create_app_from_env --factory`."""
    return create_app(Settings.from_env())
