"""Bench-only launcher: the gateway with its audit off (never for production).

It lets the bench (`python -m bench`, the "gateway, audit off" row) measure what the audit adds
to a request, against the same gateway in the same run. Off means: no audit event is encoded
(close_request still builds the record: the access log line and the metrics read it), the settle
script gets no event (settle.lua then appends nothing to the audit stream and adds nothing to
its byte counter), a refused request's event is not appended (record() does nothing), admission
does not read the audit stream's byte counter (no bound), and nothing is queued in the worker
either, so the writer has nothing to write: no audit rows and no usage-ledger rows in
PostgreSQL. Limits, leases and budget counters in Redis are exactly the gateway's; the writer
task still runs, idle (blocking reads of the empty streams, a second each; the prompt-log
purge once a minute).

Like nolimits_serve.py it patches the gateway's internals from outside (the product has no
setting for this), so it may need following when they change; the bench leaves its row out,
with a warning, if it does not start. Redis only, one worker only.
"""

# Run by the bench: python bench/auditoff_serve.py --port N [--workers 1] (environment as for
# serve)

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis

from bench.nolimits_serve import serve_patched
from config import Settings
from limits import RedisLimits, Ticket
from server import lifecycle
from server.accounting import closing, record


class NoAuditLimits(RedisLimits):
    """The gateway's Redis limits backend, minus the audit stream."""

    async def settle(
        self,
        ticket: Ticket,
        used_tokens: int,
        *,
        event: bytes | None = None,
        now: float | None = None,
    ) -> bool:
        """Settle the usage, with no event; True: the worker must not queue the event itself."""
        await super().settle(ticket, used_tokens, now=now)
        return True

    async def record(self, event: bytes, *, shard_key: str) -> bool:
        """A refused request's event: dropped (True: not queued in the worker either)."""
        return True


GATEWAY_LIMITS = lifecycle.make_limits  # the gateway's own, before main() patches it


def _no_audit_limits(settings: Settings, redis: Redis | None) -> RedisLimits:
    """The backend the gateway would make, built by its own code (so it follows its options),
    with no audit byte bound, then given NoAuditLimits's two methods (no state of its own)."""
    if redis is None:
        raise SystemExit("auditoff_serve: needs REDIS_URL (the bench always sets it)")
    limits = GATEWAY_LIMITS(settings.with_(audit_queue_max_bytes=None), redis)
    if not isinstance(limits, RedisLimits):
        raise SystemExit(f"auditoff_serve: expected RedisLimits, got {type(limits).__name__}")
    limits.__class__ = NoAuditLimits
    return limits


def _no_event(rec: record.RequestRecord, *, prompt_max: int = 0) -> bytes:
    return b""


def main() -> None:
    """Serve like `neuronetz-gateway serve --no-migrate`, minus the audit."""
    vars(closing)["encode_event"] = _no_event  # close_request's name for it
    serve_patched(_no_audit_limits)


if __name__ == "__main__":
    main()
