"""Readiness checks: each dependency answers within a short timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Sanic
from tortoise import connections

from server.context import services


class NotReady(Exception):
    """A check failed for a reason that is safe to show on /readyz."""


Check = Callable[[Sanic[Any, Any]], Awaitable[str]]


async def _database(app: Sanic[Any, Any]) -> str:
    await connections.get("default").execute_query("SELECT 1")
    return "ok"


async def _redis(app: Sanic[Any, Any]) -> str:
    svc = services(app)
    if svc.redis is None:
        return "ok"
    await svc.redis.ping()
    return "ok"


async def _run(check: Check, app: Sanic[Any, Any]) -> str:
    try:
        return await asyncio.wait_for(check(app), timeout=1.0)
    except NotReady as exc:
        return f"failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"failed: {type(exc).__name__}"


async def check_ready(app: Sanic[Any, Any]) -> dict[str, str]:
    """Each dependency's state: "ok" or "failed: …"."""
    checks: dict[str, Check] = {"database": _database, "redis": _redis}
    checks.update(app.ctx.ready_checks if hasattr(app.ctx, "ready_checks") else {})
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[n], app) for n in names))
    return dict(zip(names, results, strict=True))
