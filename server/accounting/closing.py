"""Closing a request, once: settle what it reserved and write its one audit record."""

from __future__ import annotations

import time

from limits import Ask, LimitsUnavailable
from server.accounting.admission import admit, settle
from server.accounting.event import encode_event
from server.accounting.meter import Counted
from server.accounting.record import PromptRecord, RequestRecord, now_utc
from server.context import GatewayRequest, RequestContext, Worker, new_request_id
from server.errors import GatewayError, surface_of
from server.observe.access import request_finished

UNAUDITED = frozenset({"/healthz", "/readyz", "/metrics"})


def route_of(request: GatewayRequest) -> str:
    """The route pattern a request matched (a bounded metrics label)."""
    route = request.route
    if route is None:
        return "blocked" if request.ctx.error == "blocked_endpoint" else "unmatched"
    return "/" + route.path.lstrip("/")


def record_of(request: GatewayRequest, ctx: RequestContext, counted: Counted) -> RequestRecord:
    """The audit event (and ledger row, and prompt log) of one request."""
    p = ctx.principal
    ticket = ctx.admission.ticket if ctx.admission is not None else None
    prompt = None
    if p is not None and p.log_prompts and ctx.meter is not None and ticket is not None:
        body = request.body.decode("utf-8", errors="replace")
        prompt = PromptRecord(body, ctx.meter.text, p.prompt_ttl_days)
    first = ctx.first_byte
    return RequestRecord(
        request_id=ctx.request_id,
        client_request_id=ctx.client_request_id,
        surface=surface_of(request.path),
        method=request.method,
        path=request.path,
        status=ctx.status or 499,
        time=now_utc(),
        tenant_id=p.tenant_id if p else None,
        key_id=p.key_id if p else None,
        key_prefix=p.prefix if p else None,
        model=ctx.model,
        backend=ctx.backend,
        latency_ms=(time.perf_counter() - ctx.started) * 1000,
        ttfb_ms=(first - ctx.started) * 1000 if first is not None else None,
        prompt_tokens=counted.prompt,
        completion_tokens=counted.completion,
        tokens_estimated=counted.estimated,
        client_ip=request.remote_addr or request.ip or None,
        user_agent=request.headers.get("user-agent"),
        error=ctx.error,
        limit=ctx.limit,
        usage_day=ticket.day if ticket is not None and ctx.meter is not None else None,
        prompt=prompt,
    )


async def admit_request(request: GatewayRequest) -> None:
    """Admit a metadata request (a listing, a lookup, usage): it counts against requests per
    minute and takes a concurrency slot, but spends no tokens. Raises 429 / 503 like any."""
    ctx = request.ctx
    worker = request.app.ctx.worker
    ask = Ask(request_id=ctx.request_id, prompt_tokens=0, max_output=None, output="none")
    try:
        ctx.admission = await admit(worker.limits, worker.settings.tz, ctx.caller, ask)
        ctx.ticket = ctx.admission.ticket
    except GatewayError as exc:
        ctx.failed(exc)
        raise


def event_of(request: GatewayRequest, ctx: RequestContext, counted: Counted) -> bytes:
    """The request's audit event as queued (settle(..., event=) or record(event, ...))."""
    return encode_event(record_of(request, ctx, counted))


def shard_key_of(ctx: RequestContext) -> str:
    """What picks the audit stream of a request never admitted: its tenant, else its id."""
    return str(ctx.principal.tenant_id) if ctx.principal is not None else ctx.request_id


async def close_request(request: GatewayRequest, status: int | None = None) -> None:
    """Record the request and settle its reservation; a second call does nothing.

    Called when the response is complete (the lifecycle signal) and by the relay when its
    stream ends or is cancelled, whichever comes first. `status` is the response's, used
    when nothing set one before.
    """
    ctx = request.ctx
    if ctx.closed:
        return
    ctx.closed = True
    if status is not None and not ctx.status:
        ctx.status = status
    if request.path in UNAUDITED:
        return
    worker = request.app.ctx.worker
    counted = ctx.counted()
    record = record_of(request, ctx, counted)
    tenant = ctx.principal.tenant_name if ctx.principal is not None else None
    request_finished(worker.metrics, worker.access, record, route=route_of(request), tenant=tenant)
    event = encode_event(record)
    ticket = ctx.ticket
    if ticket is None:
        await _queue(worker, event, shard_key_of(ctx))
        return
    try:  # the event goes with the usage it settles, in one call
        appended = await settle(worker.limits, ticket, counted.total, event=event)
    except LimitsUnavailable:
        appended = False
    if not appended:  # Redis away, or the request's reservation already gone: keep it here
        worker.recorder.append(event)


async def _queue(worker: Worker, event: bytes, shard_key: str) -> None:
    """Queue the event of a request never admitted (one XADD); the worker keeps what Redis
    could not take."""
    try:
        appended = await worker.limits.record(event, shard_key=shard_key)
    except LimitsUnavailable:
        appended = False
    if not appended:
        worker.recorder.append(event)


def refusal_record(head: bytes, status: int, error: str, client_ip: str | None) -> RequestRecord:
    """The audit record of bytes refused before they were a request (not HTTP, too slow).

    The method and path are what the first line seems to hold (made storable when encoded).
    """
    words = head.split(b"\r\n", 1)[0].split(b" ")
    method = words[0].decode("utf-8", errors="replace") if words and words[0] else "?"
    path = words[1].decode("utf-8", errors="replace") if len(words) > 1 else ""
    return RequestRecord(
        request_id=new_request_id(),
        surface=surface_of(path),
        method=method,
        path=path,
        status=status,
        time=now_utc(),
        client_ip=client_ip,
        error=error,
    )


async def record_refusal(worker: Worker, record: RequestRecord) -> None:
    """Queue the event of a connection refused before it became a request (one XADD)."""
    request_finished(worker.metrics, worker.access, record, route="unmatched", tenant=None)
    await _queue(worker, encode_event(record), record.request_id)
