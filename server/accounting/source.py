"""What the audit writer reads from: queued entries, their acknowledgement, dead letters, status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued event: its shard (stream) and id there, and the event bytes."""

    shard: int
    id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """What the queue holds: for /readyz detail, /metrics and the logs."""

    backlog: int  # events queued or being written, not yet acknowledged
    bytes: int  # their size (what the queue's byte bound is checked against)
    dead_letters: int  # events set aside because the database refused them
    oldest_age_s: float | None = None  # age of the oldest event not yet written

    def as_dict(self) -> dict[str, int | float | None]:
        """A plain dict (JSON)."""
        return asdict(self)


class EventSource(Protocol):
    """A queue of audit events as one writer sees it (Redis streams, or the in-process queue)."""

    async def prepare(self) -> None:
        """Make the queue readable (create consumer groups); called before the first take."""
        ...

    async def abandoned(self) -> list[Entry]:
        """Entries taken before and never acknowledged (a writer that stopped mid-batch)."""
        ...

    async def take(self, count: int, block: float) -> list[Entry]:
        """Up to `count` entries to write, waiting up to `block` s for the first."""
        ...

    async def touch(self, entries: Sequence[Entry]) -> None:
        """Tell the queue these entries are still being retried by this writer."""
        ...

    async def ack(self, entries: Sequence[Entry]) -> None:
        """The entries are committed: forget them."""
        ...

    async def dead_letter(self, entry: Entry, why: str) -> None:
        """Set an entry aside (the database refused it, or it is no event) and forget it."""
        ...

    async def status(self) -> QueueStatus:
        """The backlog and the dead letters."""
        ...
