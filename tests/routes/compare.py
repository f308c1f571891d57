"""Comparing what a client got through the gateway with what it got from the fake directly."""

from __future__ import annotations

from typing import Any

VOLATILE = frozenset(
    {
        "id",
        "created",
        "created_at",
        "expires_at",
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    }
)


def scrub(value: Any) -> Any:
    """The value with ids, timestamps and durations removed (recursively)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value
