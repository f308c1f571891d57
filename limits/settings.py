"""Checks of the tuning parameters both backends take (lease ttl, output step, caps, bound)."""

from __future__ import annotations


def check_settings(
    lease_ttl: float, output_step: int, non_stream_cap: int, events_max_bytes: int | None
) -> None:
    """Raise ValueError for a value no backend can work with."""
    if not lease_ttl > 0:
        raise ValueError("lease_ttl must be > 0 seconds")
    if output_step < 1:
        raise ValueError("output_step must be >= 1")
    if non_stream_cap < 1:
        raise ValueError("non_stream_cap must be >= 1")
    if events_max_bytes is not None and events_max_bytes < 0:
        raise ValueError("events_max_bytes must be >= 0 or None")
