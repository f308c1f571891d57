"""Bench-only launcher: the gateway with an admit-everything limits backend (never for production).

It lets bench_relay.py measure what admission and settle add, against the same relay without them.
"""

# Run by bench_relay.py: python bench/nolimits_serve.py --port N (environment as for serve)

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
    lifecycle.make_limits = _no_limits  # type: ignore[assignment]
    port = int(sys.argv[sys.argv.index("--port") + 1])
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1
    serve.run(Settings.from_env(), host="127.0.0.1", port=port, workers=workers, migrate=False)


if __name__ == "__main__":
    main()
