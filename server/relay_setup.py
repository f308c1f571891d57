"""Per-worker relay resources: the backend registry, its health task, its readiness check."""

from __future__ import annotations

import asyncio
from typing import Any

from sanic import Sanic

from server.backends import BackendRegistry
from server.context import Services, services
from server.readiness import NotReady

HEALTH_TASK = "nzgw-backend-health"
EXTRA = "backends"
START_PROBE_TIMEOUT = 5.0


def backends_of(svc: Services) -> BackendRegistry:
    """The worker's backend registry (built by the start hook)."""
    registry: BackendRegistry = svc.extras[EXTRA]
    return registry


async def _start(app: Sanic[Any, Any], svc: Services) -> None:
    registry = BackendRegistry.build(svc.settings)
    svc.extras[EXTRA] = registry
    try:
        await asyncio.wait_for(registry.refresh(), timeout=START_PROBE_TIMEOUT)
    except TimeoutError:
        pass  # the health task keeps probing; requests still try every backend in order
    app.add_task(registry.run(svc.settings.backend_probe_interval), name=HEALTH_TASK)
    app.ctx.task_names.append(HEALTH_TASK)


async def _stop(app: Sanic[Any, Any], svc: Services) -> None:
    await app.cancel_task(HEALTH_TASK, raise_exception=False)
    registry = svc.extras.pop(EXTRA, None)
    if isinstance(registry, BackendRegistry):
        await registry.aclose()


async def _ready(app: Sanic[Any, Any]) -> str:
    """Ready when at least one backend is in service."""
    registry = backends_of(services(app))
    if not any(s.healthy for s in registry.states):
        raise NotReady("no healthy Ollama backend")
    return "ok"


def setup_relay(app: Sanic[Any, Any]) -> None:
    """Register the start/stop hooks and the readiness check (once per app)."""
    if getattr(app.ctx, "relay_setup", False):
        return
    app.ctx.relay_setup = True
    app.ctx.start_hooks.append(_start)
    app.ctx.stop_hooks.append(_stop)
    checks = dict(getattr(app.ctx, "ready_checks", {}))
    checks["backends"] = _ready
    app.ctx.ready_checks = checks
