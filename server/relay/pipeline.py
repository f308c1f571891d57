"""The relay: read the body, admit, forward to a backend streaming bytes back, then close."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from loguru import logger

from limits import Ask, OutputKind
from server.accounting.admission import admit, rate_headers
from server.accounting.closing import admit_request, close_request
from server.accounting.meter import Meter
from server.auth.principal import Principal
from server.context import CLIENT_GONE, GatewayRequest, RequestContext, Worker
from server.errors import Forbidden, GatewayError
from server.relay.backends import BackendState
from server.relay.body import Kind, parse, upstream_body
from server.relay.framing import Records, forwarder
from server.relay.modelnames import check_cloud
from server.relay.stepping import Steps, ending, send_records
from server.relay.upstream import (
    Answer,
    BackendBusy,
    BackendDown,
    client_headers,
    response_headers,
    send,
    upstream_errors,
)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a route relays to and how its body is read (kind None: no body, no model)."""

    path: str
    kind: Kind | None = None
    model: str | None = None  # a model named in the path (/v1/models/{model})


def check_model(p: Principal, model: str, allow_cloud: bool) -> None:
    """403 when the key may not use the model, or it is a cloud model the operator keeps."""
    check_cloud(model, allow_cloud)
    if not p.may_use(model):
        raise Forbidden(f"model '{model}' is not allowed for this API key")


async def relay(request: GatewayRequest, target: Target) -> None:
    """Relay one request; its log lines carry the request id and the key prefix."""
    ctx = request.ctx
    with logger.contextualize(request_id=ctx.request_id, key_prefix=ctx.caller.prefix):
        worker = request.app.ctx.worker
        try:
            await _relay(request, target, ctx, worker)
        finally:
            worker.live.pop(ctx.request_id, None)
            await asyncio.shield(close_request(request))


async def _relay(
    request: GatewayRequest, target: Target, ctx: RequestContext, worker: Worker
) -> None:
    """Read and admit, then forward and stream; the context notes how it ends."""
    p = ctx.caller
    ctx.model = target.model
    try:
        client_headers(request.headers)  # a header Ollama would refuse is refused uncharged
        if target.kind is not None:
            ctx.reading = parse(request.body, target.kind, worker.rules)
            ctx.model = ctx.reading.model
        if ctx.model is not None:
            check_model(p, ctx.model, worker.rules.allow_cloud)
        reading = ctx.reading
        if reading is not None and reading.kind.metered:
            output: OutputKind = "none"
            if reading.kind.generates:
                output = "stream" if reading.stream else "single"
            ask = Ask(ctx.request_id, reading.prompt_tokens, reading.max_output, output)
            ctx.admission = await admit(worker.limits, worker.settings.tz, p, ask)
            ctx.ticket = ctx.admission.ticket
            ctx.meter = Meter(capture=p.log_prompts)
        else:
            await admit_request(request)  # metadata: counts against requests per minute
        worker.live[ctx.request_id] = ctx  # its lease and reservation are kept alive
        await _forward(request, ctx, worker, target)
    except GatewayError as exc:
        ctx.failed(exc)
        raise
    except asyncio.CancelledError:
        ctx.error = CLIENT_GONE
        raise
    except Exception:  # a bug: the client gets a 500 (errors.py), and so does the record
        if ctx.first_byte is None:
            ctx.status = 500
        ctx.error = "internal_error"
        raise


def _body(request: GatewayRequest, ctx: RequestContext) -> bytes | None:
    """The body to send upstream (written from the reading when a field must change)."""
    reading = ctx.reading
    if reading is None:
        return request.body or None
    admission = ctx.admission
    cap = admission.output_cap if admission is not None and reading.kind.generates else None
    return upstream_body(reading, request.body, cap)


async def _forward(
    request: GatewayRequest, ctx: RequestContext, worker: Worker, target: Target
) -> None:
    """Take a slot on the best backend and relay; fail over while nothing reached the client."""
    registry = worker.backends
    body = _body(request, ctx)
    url = target.path + (f"?{request.query_string}" if request.query_string else "")
    runs_model = ctx.reading is not None and ctx.reading.kind.metered
    route = registry.router(ctx.model, counted=runs_model, shared=worker.redis)
    moved: tuple[BackendState, str] | None = None  # the backend the last try failed on, and why
    while True:
        slot = await route.take()  # the last failure, or 503 when nothing frees up in time
        try:
            candidate = slot.state
            if moved is not None:  # another backend takes what the last one could not
                registry.failed_over(*moved)
                moved = None
            ctx.upstream_sent = True
            with registry.sending(candidate):
                try:
                    upstream = await send(
                        candidate.relay_client,
                        candidate.backend,
                        request.method,
                        url,
                        request.headers,
                        body,
                    )
                except BackendDown as exc:
                    ctx.upstream_sent = False  # it never arrived: nothing was generated
                    registry.mark_down(candidate, exc.message)
                    route.failed(candidate, exc)
                    moved = (candidate, "unreachable")
                    continue
                except BackendBusy as exc:  # healthy, just full: no cool-down
                    ctx.upstream_sent = False  # refused before it began
                    route.failed(candidate, exc)
                    moved = (candidate, "busy")
                    continue
                registry.mark_up(candidate)
                try:
                    await _stream(request, ctx, worker, target, candidate, upstream)
                finally:
                    await upstream.aclose()
                return
        finally:
            slot.release()


async def _stream(
    request: GatewayRequest,
    ctx: RequestContext,
    worker: Worker,
    target: Target,
    candidate: BackendState,
    upstream: Answer,
) -> None:
    """Send the upstream status, headers and body on, chunk by chunk."""
    ctx.backend = candidate.name
    ctx.status = upstream.status_code
    headers = response_headers(upstream.headers)
    content_type = headers.pop("content-type", None) or headers.pop("Content-Type", None)
    admission = ctx.admission
    if admission is not None and admission.rate is not None:
        headers.update(rate_headers(admission.rate))
    reading = ctx.reading
    injected = (
        reading is not None
        and reading.kind is Kind.OPENAI_GENERATE
        and reading.stream
        and not reading.include_usage
    )
    meter = ctx.meter or Meter(capture=False)
    response = await request.respond(
        status=upstream.status_code, headers=headers, content_type=content_type
    )
    ticket = ctx.ticket
    stepped = reading is not None and ticket is not None and ticket.stepped
    try:
        with upstream_errors(candidate.backend):
            if stepped and upstream.is_success and reading is not None:
                records = Records(meter, content_type or "", strip_usage=injected)
                steps = Steps(worker.limits, ctx, worker.settings.output_reserve_step)
                try:
                    done = await _stepped(upstream, records, steps, response, ctx)
                finally:
                    steps.cancel()
                if not done:  # the budget is reached: a normal, truncated answer
                    await upstream.aclose()
                    include = reading.include_usage
                    tail = ending(
                        reading.kind, target.path, ctx, meter.passed, include, records.open_block
                    )
                    await response.send(tail)
                    ctx.error = "budget_reached"
            else:
                fwd = forwarder(
                    meter, content_type or "", strip_usage=injected and upstream.is_success
                )
                async for chunk in upstream.aiter_raw():
                    out = fwd.feed(chunk)
                    if out:
                        ctx.sent_first_byte()
                        await response.send(out)
                tail = fwd.close()
                if tail:
                    await response.send(tail)
    except GatewayError as exc:
        # Bytes may have reached the client: no retry, no error body; cut the connection so
        # the client sees a broken stream, as it would from Ollama itself.
        ctx.error = exc.code or type(exc).__name__
        logger.warning("upstream broke mid-response on {}: {}", candidate.name, exc.message)
        if request.transport is not None:
            request.transport.close()
        return
    # The record and its usage go before the last byte: an answered request has its event even
    # if this worker dies right after.
    await asyncio.shield(close_request(request))
    await response.eof()


async def _stepped(
    upstream: Answer, records: Records, steps: Steps, response: Any, ctx: RequestContext
) -> bool:
    """Relay a stepped stream in whole records; False when the budget stopped it."""
    async for chunk in upstream.aiter_raw():
        if not await send_records(records.cut(chunk), records, steps, response, ctx):
            return False
    return await send_records(records.rest(), records, steps, response, ctx)
