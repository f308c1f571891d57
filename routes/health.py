"""Liveness (/healthz) and readiness (/readyz: database, Redis and backends answer)."""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic, json

from server.readiness import check_ready


def register(app: Sanic[Any, Any]) -> None:
    """Add the two probes (no key needed)."""

    @app.get("/healthz", name="healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/readyz", name="readyz")
    async def readyz(request: Request) -> HTTPResponse:
        checks = await check_ready(request.app)
        ok = all(v == "ok" for v in checks.values())
        return json(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
        )
