"""Shared route helpers for the relayed surfaces: a handler per relay target, the listings."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from sanic import HTTPResponse, Request, json

from server.catalog import union
from server.context import principal, services
from server.relay import Target, relay
from server.relay_setup import backends_of

Handler = Callable[[Request], Coroutine[Any, Any, HTTPResponse | None]]
JSON_UTF8 = "application/json; charset=utf-8"


def relayed(target: Target) -> Handler:
    """A handler that relays every request to `target`."""

    async def handler(request: Request) -> HTTPResponse | None:
        await relay(request, target)
        return None

    return handler


async def listing(request: Request, path: str, field: str) -> list[dict[str, Any]]:
    """The key's view of a model listing over all healthy backends."""
    registry = backends_of(services(request.app))
    return await union(registry, principal(request), path, field)


def json_answer(body: dict[str, Any], content_type: str = JSON_UTF8) -> HTTPResponse:
    """A JSON answer with Ollama's content type."""
    return json(body, content_type=content_type)
