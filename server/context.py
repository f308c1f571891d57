"""Typed per-worker and per-request state (what listeners build and handlers use)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config import Settings
from limits import LimitsBackend
from server.auth import Authenticator
from server.keycache import KeyCache
from server.principal import Principal
from server.recorder import Recorder

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sanic import Request, Sanic


@dataclass
class Services:
    """Everything one worker holds open; built in before_server_start, closed in reverse."""

    settings: Settings
    redis: Redis | None
    limits: LimitsBackend
    cache: KeyCache
    auth: Authenticator
    recorder: Recorder
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestState:
    """What the gateway learns about one request as it passes."""

    request_id: str = ""
    started: float = 0.0
    principal: Principal | None = None
    relayed: bool = False  # the relay writes this request's audit record itself
    error: str | None = None  # the error code the gateway answered with, if any


def services(app: Sanic[Any, Any]) -> Services:
    """The worker's services (set by the startup listener)."""
    svc: Services = app.ctx.services
    return svc


def state(request: Request) -> RequestState:
    """The request's state (set by the first middleware)."""
    st: RequestState = request.ctx.state
    return st


def principal(request: Request) -> Principal:
    """The authenticated caller; only valid behind the auth middleware."""
    p = state(request).principal
    if p is None:  # pragma: no cover - routes are only reachable after auth
        raise RuntimeError("principal requested before authentication")
    return p
