"""Shared route helpers for the relayed surfaces: a handler per relay target, the listings."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from sanic import HTTPResponse, json

from server.accounting.closing import admit_request
from server.context import GatewayRequest
from server.relay.catalog import union
from server.relay.pipeline import Target, relay

Handler = Callable[[GatewayRequest], Coroutine[Any, Any, HTTPResponse | None]]
JSON_UTF8 = "application/json; charset=utf-8"


def relayed(target: Target) -> Handler:
    """A handler that relays every request to `target`."""

    async def handler(request: GatewayRequest) -> HTTPResponse | None:
        await relay(request, target)
        return None

    return handler


async def listing(request: GatewayRequest, path: str, field: str) -> list[dict[str, Any]]:
    """The key's view of a model listing over all healthy backends."""
    await admit_request(request)
    worker = request.app.ctx.worker
    allow_cloud = worker.rules.allow_cloud
    return await union(worker.backends, request.ctx.caller, path, field, allow_cloud=allow_cloud)


def json_answer(body: dict[str, Any], content_type: str = JSON_UTF8) -> HTTPResponse:
    """A JSON answer with Ollama's content type."""
    return json(body, content_type=content_type)
