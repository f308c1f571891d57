"""Bench-only launcher: the gateway with an admit-everything limits backend (never for production).

It lets the bench (`python -m bench --nolimits`) measure what admission and settle add, against
the same gateway without them. It patches the gateway's internals, so it may need following when
they change; the bench leaves its row out, with a warning, if it does not start.
"""

# Run by the bench: python bench/nolimits_serve.py --port N [--workers 1] (environment as for
# serve; one worker only: the patch does not reach spawned workers)

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis

from config import Settings
from limits import Admission, Ask, Extension, LimitsBackend, Subject, Ticket, Usage
from limits.windows import window_ids
from server import lifecycle, serve


class AdmitAll:
    """Admits everything with no Redis round trip; settle keeps no count (events stay local)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        # the real day and month: the event's usage_day is the ticket's day, and the audit
        # writer sets an event with no valid date aside as a dead letter instead of writing it
        day, month = window_ids(time.time() if now is None else now, self.tz)
        ticket = Ticket(
            request_id=ask.request_id,
            subject=subject,
            output=ask.output,
            day=day,
            month=month,
            prompt=ask.prompt_tokens,
            output_cap=ask.max_output,
            stepped=False,
            reserved=ask.prompt_tokens,
            at_ms=0,
            first=ask.prompt_tokens,
            last_ms=-1,
            last=0,
        )
        return Admission(allowed=True, output_cap=ask.max_output, ticket=ticket)

    async def extend(self, ticket: Ticket, tokens: int | None = None, **_: Any) -> Extension:
        return Extension(granted=tokens or 512, ticket=ticket)

    async def refresh(self, ticket: Ticket, **_: Any) -> bool:
        return True

    async def settle(self, ticket: Ticket, used_tokens: int, **_: Any) -> bool:
        return False  # the event goes to the worker's own queue

    async def record(self, event: bytes, **_: Any) -> bool:
        return False

    async def seed(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        return Usage(0, 0, 0), Usage(0, 0, 0)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _no_limits(settings: Settings, redis: Any) -> AdmitAll:
    return AdmitAll(settings.tz)


def serve_patched(make_limits: Callable[[Settings, Redis | None], LimitsBackend]) -> None:
    """Serve like `neuronetz-gateway serve --no-migrate`, with `make_limits` in place of the
    gateway's own (--port N, --workers N; the patch reaches the main process's worker only)."""
    vars(lifecycle)["make_limits"] = make_limits  # what _build calls
    port = int(sys.argv[sys.argv.index("--port") + 1])
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1
    serve.run(Settings.from_env(), host="127.0.0.1", port=port, workers=workers, migrate=False)


def main() -> None:
    """Serve like `neuronetz-gateway serve --no-migrate`, minus limits."""
    serve_patched(_no_limits)


if __name__ == "__main__":
    main()
