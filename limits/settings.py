"""The tuning both backends take: lease ttl, output step, single-answer cap, audit queue bound."""

from __future__ import annotations

from dataclasses import dataclass

from limits.protocol import LAPSE_GRACE_S


@dataclass(frozen=True, slots=True)
class Tuning:
    """Checked constructor parameters, in the units the scripts use (ms, tokens, bytes)."""

    lease_ttl: float
    output_step: int
    non_stream_cap: int
    events_max_bytes: int | None

    def __post_init__(self) -> None:
        if not self.lease_ttl > 0:
            raise ValueError("lease_ttl must be > 0 seconds")
        if self.output_step < 1:
            raise ValueError("output_step must be >= 1")
        if self.non_stream_cap < 1:
            raise ValueError("non_stream_cap must be >= 1")
        if self.events_max_bytes is not None and self.events_max_bytes < 0:
            raise ValueError("events_max_bytes must be >= 0 or None")

    @property
    def ttl_ms(self) -> int:
        """The lease ttl in ms."""
        return int(self.lease_ttl * 1000)

    @property
    def grace_ms(self) -> int:
        """How long a lapsed reservation can still be settled, in ms."""
        return LAPSE_GRACE_S * 1000
