"""`probe-ollama` and `list-backends`: each backend's health, version, models; tokens redacted."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from config import Settings
from server.admin.output import table, to_json
from server.relay.backends import BackendRegistry, BackendState

HEADERS = ("NAME", "URL", "HEALTH", "VERSION", "MODELS", "TOKEN")


def redact_url(url: str) -> str:
    """The URL without any user:password part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


async def _probe(settings: Settings) -> list[BackendState]:
    registry = BackendRegistry.build(settings)
    try:
        await registry.refresh()
    finally:
        await registry.aclose()
    return registry.states


def _row(state: BackendState) -> dict[str, Any]:
    return {
        "name": state.name,
        "url": redact_url(state.backend.url),
        "healthy": state.healthy,
        "version": state.version,
        "models": len(state.models),
        "has_token": bool(state.backend.token),
        "error": state.last_error,
    }


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
            str(r["models"]) if r["healthy"] else "-",
            "set" if r["has_token"] else "none",
        )
        for r in rows
    ]
    print(table(HEADERS, lines))


def list_backends(settings: Settings, json: bool = False) -> None:
    """Print every configured backend, in priority order, with its state now."""
    rows = [_row(s) for s in asyncio.run(_probe(settings))]
    _print(rows, bool(json))


def probe_ollama(settings: Settings, json: bool = False) -> None:
    """Probe every backend; exit 1 when any of them is down."""
    rows = [_row(s) for s in asyncio.run(_probe(settings))]
    _print(rows, bool(json))
    if not all(r["healthy"] for r in rows):
        raise SystemExit(1)
