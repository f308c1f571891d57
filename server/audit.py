"""The audit record of a request the relay did not handle: refusals, listings, usage."""

from __future__ import annotations

import time

from sanic import Request

from server.context import RequestState
from server.recorder import RequestRecord, now_utc
from server.render import surface_of

UNAUDITED = frozenset({"/healthz", "/readyz"})


def plain_record(request: Request, st: RequestState, status: int) -> RequestRecord:
    """Who asked for what and how it ended; no tokens were spent."""
    p = st.principal
    return RequestRecord(
        request_id=st.request_id,
        surface=surface_of(request.path),
        method=request.method,
        path=request.path,
        status=status,
        time=now_utc(),
        tenant_id=p.tenant_id if p else None,
        key_id=p.key_id if p else None,
        key_prefix=p.prefix if p else None,
        latency_ms=(time.perf_counter() - st.started) * 1000,
        client_ip=request.remote_addr or request.ip or None,
        user_agent=request.headers.get("user-agent"),
        error=st.error,
    )
