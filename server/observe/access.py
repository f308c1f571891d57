"""The access line and the metrics of one finished request, both taken from its audit record."""

from __future__ import annotations

from server.accounting.meter import Counted
from server.accounting.record import RequestRecord
from server.observe.logs import AccessLog
from server.observe.metrics import Metrics


def request_finished(
    metrics: Metrics,
    access: AccessLog,
    record: RequestRecord,
    *,
    route: str,
    tenant: str | None,
) -> None:
    """Count the request and write its one access line (no key beyond its prefix)."""
    latency = (record.latency_ms or 0.0) / 1000
    ttfb = record.ttfb_ms / 1000 if record.ttfb_ms is not None else None
    counted = Counted(record.prompt_tokens, record.completion_tokens, record.tokens_estimated)
    served = 200 <= record.status < 300 and record.backend is not None
    metrics.request_done(
        surface=record.surface,
        route=route,
        status=record.status,
        tenant=tenant,
        latency=latency,
        ttfb=ttfb,
        model=record.model if served else None,
        counted=counted,
        limit=record.limit,
    )
    fields: dict[str, object] = {
        "request_id": record.request_id,
        "client_request_id": record.client_request_id,
        "tenant": tenant,
        "key_prefix": record.key_prefix,
        "status": record.status,
        "latency_ms": round(record.latency_ms or 0.0, 2),
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
    }
    access.write(f"{record.method} {record.path[:200]} {record.status}", fields)
