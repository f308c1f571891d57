"""Liveness (/healthz), readiness (/readyz) and, behind METRICS_TOKEN, /metrics."""

from __future__ import annotations

from sanic import HTTPResponse, json, raw

from server.context import App, GatewayRequest
from server.errors import NotFound, Unauthorized
from server.observe.metrics import CONTENT_TYPE, token_ok
from server.observe.readiness import NOT_CONFIGURED, audit_detail, check_ready


def register(app: App) -> None:
    """Add the two probes (no key needed)."""

    @app.get("/healthz", name="healthz")
    async def healthz(request: GatewayRequest) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/readyz", name="readyz")
    async def readyz(request: GatewayRequest) -> HTTPResponse:
        checks = await check_ready(request.app.ctx.worker)
        ok = all(v in ("ok", NOT_CONFIGURED) for v in checks.values())
        audit = await audit_detail(request.app.ctx.worker)
        body = {"status": "ok" if ok else "unavailable", "checks": checks, "audit": audit}
        return json(body, status=200 if ok else 503)

    @app.get("/metrics", name="metrics")
    async def metrics(request: GatewayRequest) -> HTTPResponse:
        worker = request.app.ctx.worker
        token = worker.settings.metrics_token
        if not token:  # never open by default; METRICS_PORT serves it off the public port
            raise NotFound("unknown endpoint: GET /metrics")
        if not token_ok(request.headers, token):
            raise Unauthorized("metrics need 'Authorization: Bearer <METRICS_TOKEN>'")
        return raw(worker.metrics.render(), content_type=CONTENT_TYPE)
