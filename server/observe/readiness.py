"""Readiness checks: the database, Redis and at least one backend answer within a short timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tortoise import connections

from server.accounting.status import queue_status
from server.context import Worker

NOT_CONFIGURED = "not configured"  # the embedded default: in-process limits, nothing to reach


class NotReady(Exception):
    """A check failed for a reason that is safe to show on /readyz."""


Check = Callable[[Worker], Awaitable[str]]


async def _database(worker: Worker) -> str:
    await connections.get("default").execute_query("SELECT 1")
    return "ok"


async def _redis(worker: Worker) -> str:
    if worker.redis is None:
        return NOT_CONFIGURED
    await worker.redis.ping()  # a cluster: every primary answers
    return "ok"


async def _backends(worker: Worker) -> str:
    if not any(s.healthy for s in worker.backends.states):
        raise NotReady("no healthy Ollama backend")
    return "ok"


CHECKS: dict[str, Check] = {"database": _database, "redis": _redis, "backends": _backends}


async def _run(check: Check, worker: Worker) -> str:
    try:
        return await asyncio.wait_for(check(worker), timeout=1.0)
    except NotReady as exc:
        return f"failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"failed: {type(exc).__name__}"


async def audit_detail(worker: Worker) -> dict[str, object]:
    """The audit queue's backlog and dead letters (also set on the metrics' gauges)."""
    try:
        status = await asyncio.wait_for(
            queue_status(
                redis=worker.redis,
                namespace=worker.settings.redis_namespace,
                local=worker.recorder,
            ),
            timeout=1.0,
        )
    except Exception as exc:  # noqa: BLE001 - shown, never raised to the probe
        return {"queue": f"unreadable: {type(exc).__name__}"}
    backlog, dead = status.get("backlog"), status.get("dead_letters")
    if isinstance(backlog, int):
        worker.metrics.audit_queue.set(backlog)
    if isinstance(dead, int):
        worker.metrics.dead_letters.set(dead)
    return status


async def check_ready(worker: Worker) -> dict[str, str]:
    """Each dependency's state: "ok" or "failed: …"."""
    results = await asyncio.gather(*(_run(check, worker) for check in CHECKS.values()))
    return dict(zip(CHECKS, results, strict=True))
