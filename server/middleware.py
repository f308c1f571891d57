"""Request ids, response headers, and error rendering for every route (matched or not)."""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

from loguru import logger
from sanic import HTTPResponse, Request, Sanic
from sanic import exceptions as sx
from sanic.handlers import ErrorHandler
from sanic.response import BaseHTTPResponse

from server.audit import UNAUDITED, plain_record
from server.context import RequestState, services
from server.errors import GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge
from server.render import error_response

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def setup_middleware(app: Sanic[Any, Any]) -> None:
    """Give each request an id and a start time; echo the id on every response."""

    async def begin(request: Request) -> None:
        given = request.headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.ctx.state = RequestState(request_id=rid, started=time.perf_counter())

    async def finish(request: Request, response: BaseHTTPResponse) -> None:
        st = getattr(request.ctx, "state", None)
        if st is not None:
            response.headers["x-request-id"] = st.request_id
            if not st.relayed and request.path not in UNAUDITED:
                services(request.app).recorder.record(plain_record(request, st, response.status))
        response.headers["x-gateway-worker"] = worker

    worker = str(os.getpid())
    app.register_middleware(begin, "request", priority=100)
    app.register_middleware(finish, "response", priority=100)


class GatewayErrorHandler(ErrorHandler):
    """Renders every exception in the surface's shape; never a traceback to the client."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        error = _translate(request, exception)
        response = error_response(request.path, error)
        st = getattr(request.ctx, "state", None)
        if st is not None:
            response.headers["x-request-id"] = st.request_id
            st.error = error.code or type(error).__name__
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


def setup_errors(app: Sanic[Any, Any]) -> None:
    """Install the error handler."""
    app.error_handler = GatewayErrorHandler()
