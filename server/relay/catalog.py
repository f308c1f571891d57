"""Model listings (/api/tags, /api/ps, /v1/models): the union over healthy backends, filtered."""

from __future__ import annotations

import asyncio
from typing import Any

from server.auth.principal import Principal
from server.errors import GatewayError, Unavailable
from server.relay.backends import BackendRegistry, BackendState, model_names
from server.relay.modelnames import is_cloud, normalise_model
from server.relay.upstream import BackendDown, request_headers, upstream_errors


async def _fetch(registry: BackendRegistry, state: BackendState, path: str) -> Any:
    """One backend's listing as JSON, or the gateway error it failed with."""
    try:
        with registry.sending(state), upstream_errors(state.backend):
            response = await state.client.get(path, headers=request_headers({}, state.backend))
    except BackendDown as exc:
        registry.mark_down(state, exc.message)
        return exc
    except GatewayError as exc:
        return exc
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _name(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    name = item.get("model") or item.get("name") or item.get("id")
    return name if isinstance(name, str) else None


async def union(
    registry: BackendRegistry,
    principal: Principal,
    path: str,
    field: str,
    *,
    allow_cloud: bool = False,
) -> list[dict[str, Any]]:
    """Entries of `field` in each healthy backend's answer to `path`, first backend first.

    Duplicates (the same model on two backends) appear once; models the key may not use are
    left out, and so are cloud models unless the operator allows them. Raises the last error
    when no backend answered at all.
    """
    live = registry.healthy()
    if not live:
        raise Unavailable("no Ollama backend is available right now")
    answers = await asyncio.gather(*(_fetch(registry, s, path) for s in live))
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    errors = [a for a in answers if isinstance(a, GatewayError)]
    if len(errors) == len(answers):
        raise errors[-1]
    for state, answer in zip(live, answers, strict=True):
        if not isinstance(answer, dict):
            continue
        if path == "/api/tags":
            registry.note_models(state, model_names(answer))
        for item in answer.get(field) or []:
            name = _name(item)
            if name is None or normalise_model(name) in seen or not principal.may_use(name):
                continue
            if is_cloud(name) and not allow_cloud:
                continue
            seen.add(normalise_model(name))
            out.append(item)
    return out
