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

from server.accounting.audit import close_request
from server.context import App, GatewayRequest
from server.errors import GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge, error_response

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def client_request_id(request: GatewayRequest) -> str | None:
    """The client's X-Request-Id when it is well-formed (a correlation id, nothing more)."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else None


def echoed_id(request: GatewayRequest) -> str:
    """The id the response carries: the client's own if it sent one, else the server's."""
    ctx = request.ctx
    return ctx.client_request_id or ctx.request_id


def setup_middleware(app: App) -> None:
    """Open each request's context, set the common response headers, close it when done."""

    async def begin(request: GatewayRequest) -> None:
        request.ctx.client_request_id = client_request_id(request)

    async def finish(request: GatewayRequest, response: BaseHTTPResponse) -> None:
        response.headers["x-request-id"] = echoed_id(request)
        response.headers["x-gateway-request-id"] = request.ctx.request_id
        response.headers["x-gateway-worker"] = worker

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
