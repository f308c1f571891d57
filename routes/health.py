"""Liveness (/healthz) and readiness (/readyz: database, Redis and backends answer)."""

from __future__ import annotations

from sanic import HTTPResponse, json

from server.context import App, GatewayRequest
from server.readiness import check_ready


def register(app: App) -> None:
    """Add the two probes (no key needed)."""

    @app.get("/healthz", name="healthz")
    async def healthz(request: GatewayRequest) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/readyz", name="readyz")
    async def readyz(request: GatewayRequest) -> HTTPResponse:
        checks = await check_ready(request.app.ctx.worker)
        ok = all(v == "ok" for v in checks.values())
        return json(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
        )
