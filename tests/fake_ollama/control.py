"""The /_fake/ control plane used by tests: records, reset and runtime config."""

from __future__ import annotations

import json
from typing import Any

from sanic import HTTPResponse, Request

from .state import ConfigError, State
from .web import CT_JSON_UTF8, CT_TEXT, json_response, raw


def token_totals(records: list[dict[str, Any]], path: str | None = None) -> dict[str, int]:
    """Sums over the decoded views: tokens reported (prompt/eval counts) and generated."""
    totals = {"requests": 0, "prompt_eval_count": 0, "eval_count": 0, "generated": 0}
    for entry in records:
        decoded = entry.get("decoded")
        if decoded is None or (path is not None and entry["path"] != path):
            continue
        totals["requests"] += 1
        for key in ("prompt_eval_count", "eval_count", "generated"):
            totals[key] += int(decoded.get(key) or 0)
    return totals


async def handle(request: Request, state: State, path: str) -> HTTPResponse:
    """Dispatch a /_fake/* request."""
    route = (request.method, path)
    if route == ("GET", "/_fake/requests"):
        return json_response(state.requests)
    if route == ("GET", "/_fake/cancellations"):
        return json_response(state.cancellations)
    if route == ("GET", "/_fake/load"):
        return json_response(state.load.to_json())
    if route == ("GET", "/_fake/tokens"):
        return json_response(token_totals(state.requests, request.args.get("path")))
    if route == ("POST", "/_fake/reset"):
        state.reset()
        return json_response({"ok": True, "config": state.config.to_json()})
    if route == ("GET", "/_fake/config"):
        return json_response(state.config.to_json())
    if route == ("POST", "/_fake/config"):
        try:
            patch = json.loads(request.body or b"{}")
            if not isinstance(patch, dict):
                raise ConfigError("config patch must be a JSON object")
            state.configure(patch)
        except (json.JSONDecodeError, ConfigError, TypeError) as err:
            return json_response({"error": str(err)}, 400, CT_JSON_UTF8)
        return json_response(state.config.to_json())
    return raw(b"404 page not found", 404, CT_TEXT)
