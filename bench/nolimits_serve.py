"""Bench-only launcher: the gateway with an admit-everything limits backend (never for production).

It lets the bench (`python -m bench --nolimits`) measure what admission and settle add, against
the same gateway without them. It patches the gateway's internals, so it may need following when
they change; the bench leaves its row out, with a warning, if it does not start.
"""

# Run by the bench: python bench/nolimits_serve.py --port N [--workers 1] (environment as for
# serve; one worker only: the patch does not reach spawned workers)

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import Settings
from limits import Admission, Ask, Subject, Ticket, Usage
from server import lifecycle, serve


class AdmitAll:
    """Admits everything with no Redis round trip; settle does nothing."""

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        ticket = Ticket(
            ask.request_id, subject.tenant_id, subject.key_id, "", "", 0, 0, False, False
        )
        return Admission(allowed=True, ticket=ticket)

    async def settle(self, ticket: Ticket, used_tokens: int, *, now: float | None = None) -> None:
        return None

    async def seed(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        return Usage(0, 0, 0), Usage(0, 0, 0)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _no_limits(settings: Settings, redis: Any) -> AdmitAll:
    return AdmitAll()


def main() -> None:
    """Serve like `neuronetz-gateway serve --no-migrate`, minus limits."""
    lifecycle.make_limits = _no_limits
    port = int(sys.argv[sys.argv.index("--port") + 1])
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1
    serve.run(Settings.from_env(), host="127.0.0.1", port=port, workers=workers, migrate=False)


if __name__ == "__main__":
    main()
