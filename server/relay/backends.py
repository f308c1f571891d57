"""The backend registry: health, model lists from /api/tags, tiers, cool-down and probing.

With the worker's Metrics it also records each backend's health, the requests in flight to it
and the requests that failed over from it (the CLI's registry records nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from loguru import logger

from config import Backend, Settings
from server.relay.balance import tiers
from server.relay.direct import DirectClient
from server.relay.modelnames import normalise_model
from server.relay.slots import Router, Slots
from server.relay.upstream import make_client, request_headers

if TYPE_CHECKING:
    from limits import AnyRedis
    from server.observe.metrics import Metrics

PROBE_TIMEOUT = 3.0
PROBE_AGENT = "neuronetz-gateway-probe"
LEASE_MARGIN = 10.0


@dataclass
class BackendState:
    """What this worker currently knows about one backend."""

    backend: Backend
    client: httpx.AsyncClient  # probes and the model catalog
    direct: DirectClient | None = None  # relayed requests (None: they go through `client`)
    position: int = 0  # its place in OLLAMA_BACKENDS
    in_flight: int = 0  # this worker's requests on it now (those that run a model)
    credit: float = 0.0  # smooth weighted round robin: breaks ties between equal loads
    healthy: bool = True
    checked: bool = False
    models: frozenset[str] = frozenset()
    version: str | None = None
    down_until: float = 0.0
    failures: int = 0
    last_error: str | None = None

    @property
    def name(self) -> str:
        """The backend's configured name."""
        return self.backend.name

    @property
    def tier(self) -> int:
        """Its priority tier: the configured group, else its position (strict priority)."""
        group = self.backend.group
        return self.position if group is None else group

    def has(self, model: str) -> bool:
        """Whether the last model list names this model."""
        return normalise_model(model) in self.models

    @property
    def relay_client(self) -> httpx.AsyncClient | DirectClient:
        """What relayed requests go through."""
        return self.direct or self.client


@dataclass
class BackendRegistry:
    """Backends in priority order, their health, and the clients that reach them."""

    states: list[BackendState]
    cooldown: float
    probe_timeout: float = PROBE_TIMEOUT
    queue_timeout: float = 0.0
    namespace: str = "nzgw"
    metrics: Metrics | None = None  # the worker's; None records nothing (the CLI)
    slots: Slots = field(init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        # Shared leases outlive three missed renewals (one per probe interval) before expiring.
        ttl = 3 * self.cooldown + LEASE_MARGIN
        self.slots = Slots(self, self.queue_timeout, self.namespace, ttl)
        for state in self.states:  # in service until a probe or a request finds otherwise
            self._health(state)

    @classmethod
    def build(
        cls,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> BackendRegistry:
        """One state and its clients per configured backend (`transport`: tests relay through it)."""
        states = [
            BackendState(
                b,
                make_client(b, settings, transport),
                None if transport is not None else DirectClient(b, settings),
                position=i,
            )
            for i, b in enumerate(settings.backends)
        ]
        timeout = min(PROBE_TIMEOUT, settings.upstream_connect_timeout + 1.0)
        return cls(
            states,
            cooldown=settings.backend_probe_interval,
            probe_timeout=timeout,
            queue_timeout=settings.backend_queue_timeout,
            namespace=settings.redis_namespace,
            metrics=metrics,
        )

    def in_service(self, state: BackendState) -> bool:
        """Whether the backend may be tried now (healthy, or its cool-down is over)."""
        return state.healthy or time.monotonic() >= state.down_until

    def healthy(self) -> list[BackendState]:
        """Backends in service now, in priority order."""
        return [s for s in self.states if self.in_service(s)]

    def tiers(self, model: str | None, skip: set[str]) -> list[list[BackendState]]:
        """Live candidates for the model not tried yet, by tier (see balance.tiers)."""
        return tiers(self.healthy(), model, skip)

    def router(
        self, model: str | None, *, counted: bool = True, shared: AnyRedis | None = None
    ) -> Router:
        """One request's route; `counted` when it runs a model (takes a slot, obeys caps).

        `shared` is the worker's Redis client: with it, max_concurrent holds across workers
        and replicas and `list-backends` sees this worker's counts.
        """
        self.slots.share(shared)
        return Router(self.slots, model, counted)

    def mark_down(self, state: BackendState, reason: str) -> None:
        """Take a backend out for a cool-down after a connection failure."""
        state.failures += 1
        state.last_error = reason
        state.down_until = time.monotonic() + self.cooldown
        if state.healthy:
            logger.warning("backend {} taken out for {}s: {}", state.name, self.cooldown, reason)
        state.healthy = False
        self._health(state)

    def mark_up(self, state: BackendState) -> None:
        """Put a backend (back) in service."""
        if not state.healthy:
            logger.info("backend {} is back in service", state.name)
            state.healthy = True
            self._health(state)  # only on a change: this runs on every relayed request
        state.failures, state.last_error = 0, None

    def _health(self, state: BackendState) -> None:
        if self.metrics is not None:
            self.metrics.backend_health(state.name, state.healthy)

    def sending(self, state: BackendState) -> AbstractContextManager[None]:
        """Around one request sent to a backend: counted in flight until it ends, any way."""
        if self.metrics is None:
            return nullcontext()
        return self.metrics.backend_request(state.name)

    def failed_over(self, state: BackendState, reason: str) -> None:
        """A request that `state` could not take (unreachable, busy) goes to another backend."""
        if self.metrics is not None:
            self.metrics.failover(state.name, reason)

    async def probe(self, state: BackendState) -> None:
        """Refresh one backend's model list and version; mark it up or down."""
        headers = request_headers({"user-agent": PROBE_AGENT}, state.backend)
        try:
            tags = await state.client.get("/api/tags", headers=headers, timeout=self.probe_timeout)
            tags.raise_for_status()
            version = await state.client.get(
                "/api/version", headers=headers, timeout=self.probe_timeout
            )
            state.models = frozenset(model_names(tags.json()))
            state.version = _version(version)
        except (httpx.HTTPError, ValueError) as exc:
            state.checked = True
            self.mark_down(state, type(exc).__name__)
            return
        state.checked = True
        self.mark_up(state)

    async def refresh(self, *, due_only: bool = False) -> None:
        """Probe every backend (or only those in service or out of their cool-down)."""
        now = time.monotonic()
        todo = [s for s in self.states if not due_only or s.healthy or now >= s.down_until]
        async with self._lock:
            await asyncio.gather(*(self.probe(s) for s in todo))

    async def run(self, interval: float) -> None:
        """Refresh for ever; a backend out for a cool-down is probed back once it ends."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh(due_only=True)
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                logger.error("backend refresh failed: {}", type(exc).__name__)
            try:
                await self.slots.heartbeat()  # renew shared leases, republish counts
            except Exception as exc:  # noqa: BLE001 - leases then lapse on their own
                logger.warning("backend leases not renewed: {}", type(exc).__name__)

    def note_models(self, state: BackendState, names: Sequence[str]) -> None:
        """Update a model list seen on the request path (e.g. a live /api/tags)."""
        state.models = frozenset(normalise_model(n) for n in names)

    async def aclose(self) -> None:
        """Give back shared leases, then close every client."""
        await self.slots.aclose()
        clients = [s.client for s in self.states] + [s.direct for s in self.states if s.direct]
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def model_names(tags: Any) -> list[str]:
    """Normalised model names from an /api/tags answer."""
    models = tags.get("models") if isinstance(tags, dict) else None
    names: list[str] = []
    for entry in models or []:
        if isinstance(entry, dict):
            name = entry.get("model") or entry.get("name")
            if isinstance(name, str):
                names.append(normalise_model(name))
    return names


def _version(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return None
    data = response.json()
    value = data.get("version") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
