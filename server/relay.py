"""The relay: admit → forward to a backend, streaming bytes through as they come → settle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from loguru import logger
from sanic import Request

from limits import Admission, Ask
from server.accounting import admit, rate_headers, settle
from server.backends import BackendState
from server.context import RequestState, Services, principal, services, state
from server.errors import Forbidden, GatewayError, Unavailable
from server.framing import forwarder
from server.outcome import CLIENT_GONE, Outcome, build_record
from server.principal import Principal
from server.relay_setup import backends_of
from server.requests import Kind, Parsed, parse, upstream_body
from server.tokens import Meter
from server.upstream import BackendDown, request_headers, response_headers, upstream_errors


@dataclass(frozen=True, slots=True)
class Target:
    """Where a route relays to and how its body is read (kind None: no body, no model)."""

    path: str
    kind: Kind | None = None
    model: str | None = None  # a model named in the path (/v1/models/{model})


def check_model(request: Request, model: str) -> None:
    """403 when the key may not use the model."""
    if not principal(request).may_use(model):
        raise Forbidden(f"model '{model}' is not allowed for this API key")


async def relay(request: Request, target: Target) -> None:
    """Relay one request; its log lines carry the request id and the key prefix."""
    st = state(request)
    st.relayed = True
    p = principal(request)
    with logger.contextualize(request_id=st.request_id, key_prefix=p.prefix):
        await _relay(request, target, st, p)


async def _relay(request: Request, target: Target, st: RequestState, p: Principal) -> None:
    """Admit, forward and stream; settle and record whatever happens."""
    svc = services(request.app)
    outcome = Outcome(model=target.model)
    admission: Admission | None = None
    try:
        parsed = parse(request.body, target.kind) if target.kind is not None else None
        if parsed is not None:
            outcome.model = parsed.model
        if outcome.model is not None:
            check_model(request, outcome.model)
        if parsed is not None and target.kind is not None and target.kind.metered:
            outcome.prompt_estimate = parsed.prompt_tokens
            outcome.generates = target.kind.generates
            max_output = parsed.max_output if target.kind.generates else None
            ask = Ask(
                request_id=st.request_id, prompt_tokens=parsed.prompt_tokens, max_output=max_output
            )
            admission = await admit(svc, p, ask)
            outcome.meter = Meter(capture=p.log_prompts)
        await _forward(request, svc, target, parsed, admission, outcome)
    except GatewayError as exc:
        outcome.failed(exc)
        raise
    except asyncio.CancelledError:
        outcome.error = CLIENT_GONE
        raise
    finally:
        counted = outcome.counted()
        ttl = p.prompt_ttl_days if p.log_prompts else None
        svc.recorder.record(build_record(request, st, outcome, counted, admission, ttl))
        if admission is not None and admission.ticket is not None:
            await settle(svc, admission.ticket, counted.total)


async def _forward(
    request: Request,
    svc: Services,
    target: Target,
    parsed: Parsed | None,
    admission: Admission | None,
    outcome: Outcome,
) -> None:
    """Try the candidate backends in order; fail over only when a connection failed."""
    registry = backends_of(svc)
    if parsed is not None and target.kind is not None:
        cap = admission.output_cap if admission and target.kind.generates else None
        body: bytes | None = upstream_body(parsed, target.kind, request.body, cap)
    else:
        body = request.body or None
    url = target.path + (f"?{request.query_string}" if request.query_string else "")
    last: GatewayError = Unavailable("no Ollama backend is available right now")
    for candidate in registry.route(outcome.model):
        try:
            with upstream_errors(candidate.backend):
                headers = request_headers(request.headers, candidate.backend)
                upstream = await candidate.client.send(
                    candidate.client.build_request(
                        request.method, url, headers=headers, content=body
                    ),
                    stream=True,
                )
        except BackendDown as exc:
            registry.mark_down(candidate, exc.message)
            last = exc
            continue
        registry.mark_up(candidate)
        try:
            await _stream(request, candidate, upstream, parsed, admission, outcome)
        finally:
            await upstream.aclose()
        return
    raise last


async def _stream(
    request: Request,
    candidate: BackendState,
    upstream: httpx.Response,
    parsed: Parsed | None,
    admission: Admission | None,
    outcome: Outcome,
) -> None:
    """Send the upstream status, headers and body on, chunk by chunk."""
    outcome.backend = candidate.name
    outcome.status = upstream.status_code
    headers = response_headers(upstream.headers)
    content_type = headers.pop("content-type", None) or headers.pop("Content-Type", None)
    if admission is not None and admission.rate is not None:
        headers.update(rate_headers(admission.rate))
    headers["x-request-id"] = state(request).request_id
    injected = parsed is not None and parsed.stream and not parsed.include_usage
    meter = outcome.meter or Meter(capture=False)
    fwd = forwarder(meter, content_type or "", strip_usage=injected and upstream.is_success)
    response = await request.respond(
        status=upstream.status_code, headers=headers, content_type=content_type
    )
    try:
        with upstream_errors(candidate.backend):
            async for chunk in upstream.aiter_raw():
                out = fwd.feed(chunk)
                if out:
                    outcome.sent_first_byte()
                    await response.send(out)
        tail = fwd.close()
        if tail:
            await response.send(tail)
    except GatewayError as exc:
        # Bytes may have reached the client: no retry, no error body; cut the connection so
        # the client sees a broken stream, as it would from Ollama itself.
        outcome.error = exc.code or type(exc).__name__
        logger.warning("upstream broke mid-response on {}: {}", candidate.name, exc.message)
        if request.transport is not None:
            request.transport.close()
        return
    await response.eof()
