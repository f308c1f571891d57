"""`probe-ollama` and `list-backends`: each backend's health, version, models, load and routing.

Tokens are redacted. In-flight counts are what the running gateway's workers last published to
Redis (at most about a second old); without REDIS_URL they cannot be seen from outside.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from config import Settings
from limits import REDIS_ERRORS
from server.admin.output import table, to_json
from server.relay.backends import BackendRegistry, BackendState
from server.relay.shared import read_in_flight
from server.stores.redis_clients import open_redis

HEADERS = (
    "NAME",
    "URL",
    "HEALTH",
    "VERSION",
    "MODELS",
    "TOKEN",
    "GROUP",
    "WEIGHT",
    "MAX",
    "IN FLIGHT",
)


def redact_url(url: str) -> str:
    """The URL without any user:password part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


async def _in_flight(settings: Settings) -> dict[str, int] | None:
    """The running gateway's in-flight counts per backend; None when they cannot be read."""
    if settings.redis_url is None:
        return None
    redis = open_redis(settings, timeout=2.0, connect_timeout=1.0)
    try:
        return await read_in_flight(redis, settings.redis_namespace)
    except REDIS_ERRORS:
        return None
    finally:
        await redis.aclose()


async def _probe(settings: Settings) -> tuple[list[BackendState], dict[str, int] | None]:
    registry = BackendRegistry.build(settings)
    try:
        _, counts = await asyncio.gather(registry.refresh(), _in_flight(settings))
    finally:
        await registry.aclose()
    return registry.states, counts


def _row(state: BackendState, counts: dict[str, int] | None) -> dict[str, Any]:
    backend = state.backend
    return {
        "name": state.name,
        "url": redact_url(backend.url),
        "healthy": state.healthy,
        "version": state.version,
        "models": sorted(state.models),
        "has_token": bool(backend.token),
        "error": state.last_error,
        "group": state.tier,
        "weight": backend.weight,
        "max_concurrent": backend.max_concurrent,
        "in_flight": None if counts is None else counts.get(state.name, 0),
    }


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _models(names: list[str], shown: int = 6) -> str:
    """Model names for the table (the first few, then how many more)."""
    if not names:
        return "none"
    more = f" (+{len(names) - shown})" if len(names) > shown else ""
    return ",".join(names[:shown]) + more


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(to_json(rows))
        return
    lines = [
        (
            r["name"],
            r["url"],
            "ok" if r["healthy"] else f"down ({r['error']})",
            r["version"] or "-",
            _models(r["models"]) if r["healthy"] else "-",
            "set" if r["has_token"] else "none",
            str(r["group"]),
            f"{r['weight']:g}",
            _dash(r["max_concurrent"]),
            _dash(r["in_flight"]),
        )
        for r in rows
    ]
    print(table(HEADERS, lines))


def _rows(settings: Settings) -> list[dict[str, Any]]:
    states, counts = asyncio.run(_probe(settings))
    return [_row(s, counts) for s in states]


def list_backends(settings: Settings, json: bool = False) -> None:
    """Print every configured backend, in priority order, with its state now."""
    _print(_rows(settings), bool(json))


def probe_ollama(settings: Settings, json: bool = False) -> None:
    """Probe every backend; exit 1 when any of them is down."""
    rows = _rows(settings)
    _print(rows, bool(json))
    if not all(r["healthy"] for r in rows):
        raise SystemExit(1)
