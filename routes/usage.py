"""Self-service usage: GET /v1/usage and /api/usage for the calling key."""

from __future__ import annotations

from dataclasses import asdict

from sanic import Blueprint, HTTPResponse, json

from server.accounting.admission import subject_of, usage_of
from server.accounting.audit import admit_request
from server.context import GatewayRequest


async def _usage(request: GatewayRequest) -> HTTPResponse:
    await admit_request(request)
    p = request.ctx.caller
    worker = request.app.ctx.worker
    tenant_usage, key_usage = await usage_of(worker.limits, worker.settings.tz, subject_of(p))
    return json(
        {
            "tenant": p.tenant_name,
            "key": {"prefix": p.prefix, "name": p.key_name},
            "limits": {"key": asdict(p.key_limits), "tenant": asdict(p.tenant_limits)},
            "usage": {"key": asdict(key_usage), "tenant": asdict(tenant_usage)},
            "allowed_models": sorted(p.allowed_models) if p.allowed_models is not None else None,
        }
    )


def register(api: Blueprint, v1: Blueprint) -> None:
    """Add the usage endpoint to both surfaces."""
    api.add_route(_usage, "/usage", methods=["GET"], name="api_usage")
    v1.add_route(_usage, "/usage", methods=["GET"], name="v1_usage")
