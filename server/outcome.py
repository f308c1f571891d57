"""What happened to one relayed request, turned into its audit/usage record at settle time."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sanic import Request

from limits import Admission
from server.context import RequestState
from server.errors import GatewayError
from server.recorder import PromptRecord, RequestRecord, now_utc
from server.render import surface_of
from server.tokens import Counted, Meter

CLIENT_GONE = "client_disconnected"
NO_TOKENS = Counted(0, 0, False)


@dataclass
class Outcome:
    """Filled in as the request goes: model, backend, status, first byte, meter, error."""

    model: str | None = None
    backend: str | None = None
    status: int = 0
    first_byte: float | None = None
    error: str | None = None
    meter: Meter | None = None
    prompt_estimate: int = 0
    generates: bool = False

    def failed(self, exc: GatewayError) -> None:
        """A gateway error ends the request (the status is the error's, unless bytes went out)."""
        if self.first_byte is None:
            self.status = exc.status_code
        self.error = exc.code or type(exc).__name__

    def sent_first_byte(self) -> None:
        """Mark the time the first byte went to the client."""
        if self.first_byte is None:
            self.first_byte = time.perf_counter()

    def counted(self) -> Counted:
        """Tokens to charge: none for a request that never produced an answer."""
        if self.meter is None:
            return NO_TOKENS
        if self.error == CLIENT_GONE or 200 <= self.status < 300:
            return self.meter.counted(self.prompt_estimate, generates=self.generates)
        return NO_TOKENS


def build_record(
    request: Request,
    st: RequestState,
    outcome: Outcome,
    counted: Counted,
    admission: Admission | None,
    prompt_ttl_days: int | None,
) -> RequestRecord:
    """The audit event (and ledger row, and prompt log) for one request."""
    p = st.principal
    now = time.perf_counter()
    ticket = admission.ticket if admission is not None else None
    prompt = None
    if prompt_ttl_days is not None and outcome.meter is not None and ticket is not None:
        body = request.body.decode("utf-8", errors="replace")
        prompt = PromptRecord(body, outcome.meter.text, prompt_ttl_days)
    return RequestRecord(
        request_id=st.request_id,
        surface=surface_of(request.path),
        method=request.method,
        path=request.path,
        status=outcome.status or 499,
        time=now_utc(),
        tenant_id=p.tenant_id if p else None,
        key_id=p.key_id if p else None,
        key_prefix=p.prefix if p else None,
        model=outcome.model,
        backend=outcome.backend,
        latency_ms=(now - st.started) * 1000,
        ttfb_ms=(outcome.first_byte - st.started) * 1000 if outcome.first_byte else None,
        prompt_tokens=counted.prompt,
        completion_tokens=counted.completion,
        tokens_estimated=counted.estimated,
        client_ip=request.remote_addr or request.ip or None,
        user_agent=request.headers.get("user-agent"),
        error=outcome.error,
        usage_day=ticket.day if ticket is not None else None,
        prompt=prompt,
    )
