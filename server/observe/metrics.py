"""Prometheus metrics: every worker records, one exposition reads them all (multiprocess mode).

With several workers, `serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the
workers start, so each worker's figures live in its own files and survive its restart; the
exposition (METRICS_PORT's listener in the main process, or /metrics behind METRICS_TOKEN)
merges them. With one worker the figures stay in its memory. Labels are bounded: tenant names
(never key prefixes or request ids), route patterns, models only once a backend served them.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import start_http_server

from server.accounting.meter import Counted

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
NO_TENANT = "-"
MAX_CHILDREN = 10_000  # label sets remembered; labels are bounded, this only caps memory


class Metrics:
    """The gateway's metrics; one instance per worker (tests make their own)."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "nzgw_requests",
            "Requests answered, by surface, route pattern, status and tenant.",
            ["surface", "route", "status", "tenant"],
            registry=r,
        )
        self.latency = Histogram(
            "nzgw_request_duration_seconds",
            "Time from the request's arrival to its end.",
            ["surface", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "nzgw_time_to_first_byte_seconds",
            "Time from the request's arrival to the first byte of a relayed answer.",
            ["surface", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "nzgw_tokens",
            "Tokens charged, by tenant, model and kind (prompt or completion).",
            ["tenant", "model", "kind"],
            registry=r,
        )
        self.refusals = Counter(
            "nzgw_refusals",
            "Requests refused by a rate limit or budget, by scope and limit.",
            ["scope", "limit"],
            registry=r,
        )
        self.key_cache = Counter(
            "nzgw_key_cache",
            "Key-cache lookups on the request path, by result (hit, miss).",
            ["result"],
            registry=r,
        )
        self.verifications = Counter(
            "nzgw_key_verifications",
            "Argon2id verifications, by result (ok, failed).",
            ["result"],
            registry=r,
        )
        # Each worker probes and marks backends itself: the minimum over live workers is 0 as
        # soon as any of them has taken the backend out (a dead worker's view is dropped).
        self.backend_up = Gauge(
            "nzgw_backend_up",
            "Whether a backend is in service (1) or out for a cool-down (0) in every worker.",
            ["backend"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self.backend_in_flight = Gauge(
            "nzgw_backend_in_flight",
            "Requests sent to a backend and not finished yet, summed over live workers.",
            ["backend"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.failovers = Counter(
            "nzgw_failovers",
            "Requests moved on to another backend, by the backend that could not take them "
            "and why (unreachable, busy).",
            ["backend", "reason"],
            registry=r,
        )
        self.audit_queue = Gauge(
            "nzgw_audit_queue_depth",
            "Audit events waiting to be written.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.dead_letters = Gauge(
            "nzgw_audit_dead_letters",
            "Audit events PostgreSQL refused, set aside for an operator.",
            multiprocess_mode="livemax",
            registry=r,
        )

    def request_done(
        self,
        *,
        surface: str,
        route: str,
        status: int,
        tenant: str | None,
        latency: float,
        ttfb: float | None,
        model: str | None,
        counted: Counted,
        limit: str | None,
    ) -> None:
        """Record one finished request."""
        tenant_label = tenant or NO_TENANT
        child = self._child
        child(self.requests, surface, route, str(status), tenant_label).inc()
        child(self.latency, surface, route).observe(latency)
        if ttfb is not None:
            child(self.ttfb, surface, route).observe(ttfb)
        if counted.prompt or counted.completion:
            model_label = model or "-"
            child(self.tokens, tenant_label, model_label, "prompt").inc(counted.prompt)
            child(self.tokens, tenant_label, model_label, "completion").inc(counted.completion)
        if limit is not None:
            scope, _, name = limit.partition(":")
            child(self.refusals, scope, name or "-").inc()

    def backend_health(self, backend: str, up: bool) -> None:
        """Record whether a backend is in service (1) or out for a cool-down (0)."""
        self._child(self.backend_up, backend).set(1 if up else 0)

    @contextmanager
    def backend_request(self, backend: str) -> Iterator[None]:
        """Count one request in flight to a backend until it ends, whichever way it ends."""
        gauge = self._child(self.backend_in_flight, backend)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def failover(self, backend: str, reason: str) -> None:
        """Count one request that moved on from `backend` to another (reason: unreachable, busy)."""
        self._child(self.failovers, backend, reason).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """A labelled child, looked up once (prometheus-client validates on every .labels())."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            if len(self._children) > MAX_CHILDREN:
                self._children.clear()
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        """The exposition of every worker's figures (or this process's, with one worker)."""
        return generate_latest(self.collector_registry())

    def collector_registry(self) -> CollectorRegistry:
        """The registry an exposition reads: the multiprocess merge, or this one."""
        return merged_registry() if self.multiproc_dir else self.registry

    def worker_exited(self) -> None:
        """Drop this worker's live gauges (its counters stay)."""
        if self.multiproc_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiproc_dir)  # type: ignore[no-untyped-call]


def merged_registry() -> CollectorRegistry:
    """A registry that reads every worker's files in PROMETHEUS_MULTIPROC_DIR."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def fresh_multiproc_dir(path: Path) -> str:
    """Empty the multiprocess directory for a new server (figures from a previous run go)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in path.glob("*.db"):
        stale.unlink()
    return str(path)


def serve_exposition(port: int, host: str, registry: CollectorRegistry) -> None:
    """The separate metrics listener (a thread of the calling process)."""
    start_http_server(port, addr=host, registry=registry)


def token_ok(headers: Mapping[str, str], token: str | None) -> bool:
    """Whether a request carries the metrics token as a Bearer token (constant time)."""
    if not token:
        return False
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)
