"""Error bodies in each surface's shape: OpenAI's error object on /v1, Ollama's on /api."""

from __future__ import annotations

from sanic import HTTPResponse, json

from server.errors import GatewayError


def surface_of(path: str) -> str:
    """`v1` for the OpenAI-compatible surface, `api` for everything else."""
    return "v1" if path.lower().lstrip("/").startswith("v1") else "api"


def error_response(path: str, error: GatewayError) -> HTTPResponse:
    """The response for a gateway error on the surface `path` belongs to."""
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
