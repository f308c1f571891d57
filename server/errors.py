"""The gateway's errors, and their bodies in each surface's shape (OpenAI's on /v1, Anthropic's
on /v1/messages, Ollama's on /api).

GatewayError
 ├── BadRequest (400)        invalid JSON, missing model, bad field
 ├── Unauthorized (401)      missing, malformed, unknown, revoked, expired key
 ├── Forbidden (403)         blocked endpoint, model not allowed
 ├── NotFound (404)          unknown path
 ├── PayloadTooLarge (413)   body over the limit
 ├── RateLimited (429)       a limit or budget tripped (headers say which)
 ├── BadGateway (502)        the backend failed or answered garbage
 ├── Unavailable (503)       fail-closed: Redis or every backend unreachable
 └── GatewayTimeout (504)    the backend did not answer in time
"""

from __future__ import annotations

from sanic import HTTPResponse, json

LIMIT_HEADER = "x-gateway-limit"  # names the scope and limit of a gateway 429


class GatewayError(Exception):
    """Base of every error the gateway answers with; never carries a secret."""

    status_code = 500
    openai_type = "api_error"
    code: str | None = None
    quiet = True

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(GatewayError):
    """The request is malformed."""

    status_code = 400
    openai_type = "invalid_request_error"


class Unauthorized(GatewayError):
    """No usable API key."""

    status_code = 401
    openai_type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    """The key may not do this, or nobody may."""

    status_code = 403
    openai_type = "permission_error"
    code = "forbidden"


class NotFound(GatewayError):
    """No such endpoint."""

    status_code = 404
    openai_type = "invalid_request_error"
    code = "unknown_url"


class MethodNotAllowed(GatewayError):
    """The endpoint exists but not with this method."""

    status_code = 405
    openai_type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    """The request body is over the configured limit."""

    status_code = 413
    openai_type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(GatewayError):
    """A rate limit, concurrency limit or budget denied the request."""

    status_code = 429
    openai_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BadGateway(GatewayError):
    """The backend failed before answering."""

    status_code = 502


class Unavailable(GatewayError):
    """Fail-closed: a dependency the gateway needs is unreachable."""

    status_code = 503
    code = "service_unavailable"


class GatewayTimeout(GatewayError):
    """The backend did not answer in time."""

    status_code = 504
    code = "upstream_timeout"


def surface_of(path: str) -> str:
    """`v1` for the OpenAI-compatible surface, `api` for everything else."""
    return "v1" if path.lower().lstrip("/").startswith("v1") else "api"


ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def is_anthropic(path: str) -> bool:
    """Whether `path` is on the Anthropic Messages surface (/v1/messages...)."""
    return path.lower().lstrip("/").startswith("v1/messages")


def error_response(path: str, error: GatewayError) -> HTTPResponse:
    """The response for a gateway error on the surface `path` belongs to."""
    if is_anthropic(path):
        kind = ANTHROPIC_TYPES.get(error.status_code, "api_error")
        anthropic = {"type": "error", "error": {"type": kind, "message": error.message}}
        return json(anthropic, status=error.status_code, headers=error.headers)
    if surface_of(path) == "v1":
        body: dict[str, object] = {
            "error": {
                "message": error.message,
                "type": error.openai_type,
                "param": None,
                "code": error.code,
            }
        }
    else:
        body = {"error": error.message}
    return json(body, status=error.status_code, headers=error.headers)
