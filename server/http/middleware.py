"""Opening and closing every request (matched or not): ids, headers, errors, the audit record."""

from __future__ import annotations

import os
import re

from loguru import logger
from sanic import HTTPResponse
from sanic import exceptions as sx
from sanic.handlers import ErrorHandler
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from server.accounting.closing import close_request
from server.context import App, GatewayRequest
from server.errors import GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge, error_response

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CORS_ALLOW_HEADERS = "authorization, content-type, x-api-key, x-request-id, openai-beta"
CORS_EXPOSE_HEADERS = (
    "x-request-id, x-gateway-request-id, x-gateway-limit, x-should-retry, retry-after, "
    "x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, "
    "x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens"
)


def client_request_id(request: GatewayRequest) -> str | None:
    """The client's X-Request-Id when it is well-formed (a correlation id, nothing more)."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else None


def echoed_id(request: GatewayRequest) -> str:
    """The id the response carries: the client's own if it sent one, else the server's."""
    ctx = request.ctx
    return ctx.client_request_id or ctx.request_id


def allowed_origin(request: GatewayRequest, origins: tuple[str, ...]) -> str | None:
    """The request's Origin when CORS_ORIGINS lets it in (CORS is off without the setting)."""
    origin = request.headers.get("origin")
    if not origin or not origins:
        return None
    return origin if "*" in origins or origin.rstrip("/") in origins else None


def preflight(request: GatewayRequest, origin: str) -> HTTPResponse:
    """The answer to a CORS preflight from an allowed origin (before any key is checked)."""
    asked = request.headers.get("access-control-request-headers", "")
    return HTTPResponse(
        status=204,
        headers={
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "GET, POST, HEAD, OPTIONS",
            "access-control-allow-headers": asked or CORS_ALLOW_HEADERS,
            "access-control-max-age": "600",
            "vary": "Origin",
        },
    )


def setup_middleware(app: App) -> None:
    """Open each request's context, set the common response headers, close it when done."""
    settings = app.ctx.settings
    origins = settings.cors_origins

    async def begin(request: GatewayRequest) -> HTTPResponse | None:
        request.ctx.client_request_id = client_request_id(request)
        if request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
            origin = allowed_origin(request, origins)
            if origin is not None:
                return preflight(request, origin)
        return None

    async def finish(request: GatewayRequest, response: BaseHTTPResponse) -> None:
        headers = response.headers
        headers["x-request-id"] = echoed_id(request)
        headers["x-gateway-request-id"] = request.ctx.request_id
        headers["x-content-type-options"] = "nosniff"
        if settings.debug_headers:
            headers["x-gateway-worker"] = worker
        origin = allowed_origin(request, origins)
        if origin is not None:
            headers["access-control-allow-origin"] = origin
            headers["access-control-expose-headers"] = CORS_EXPOSE_HEADERS
            headers["vary"] = "Origin"

    async def complete(request: GatewayRequest, response: BaseHTTPResponse) -> None:
        """The response is complete (streams end in their handler, which closes them itself)."""
        await close_request(request, response.status)

    worker = str(os.getpid())
    app.register_middleware(begin, "request", priority=100)
    app.register_middleware(finish, "response", priority=100)
    app.add_signal(complete, "http.lifecycle.response")


class GatewayErrorHandler(ErrorHandler):
    """Renders every exception in the surface's shape; never a traceback to the client."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        error = _translate(request, exception)
        response = error_response(request.path, error)
        if isinstance(request, GatewayRequest):
            response.headers["x-request-id"] = echoed_id(request)
            response.headers["x-gateway-request-id"] = request.ctx.request_id
            request.ctx.failed(error)
        return response


def _translate(request: Request, exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, sx.NotFound):
        return NotFound(f"unknown endpoint: {request.method} {request.path}")
    if isinstance(exc, sx.MethodNotAllowed):
        return MethodNotAllowed(f"method {request.method} not allowed on {request.path}")
    if isinstance(exc, sx.PayloadTooLarge):
        return PayloadTooLarge("request body is larger than the gateway allows")
    if isinstance(exc, sx.RequestCancelled):
        err = GatewayError("client closed the request")
        err.status_code = 499
        return err
    if isinstance(exc, sx.SanicException) and 400 <= (exc.status_code or 500) < 500:
        err = GatewayError(str(exc) or "bad request")
        err.status_code = exc.status_code
        err.openai_type = "invalid_request_error"
        return err
    logger.error("unhandled {} on {} {}", type(exc).__name__, request.method, request.path)
    return GatewayError("internal gateway error")


def setup_errors(app: App) -> None:
    """Install the error handler."""
    app.error_handler = GatewayErrorHandler()
