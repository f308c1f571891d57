"""Rate limits, concurrency leases and token budgets, with Redis and in-memory backends."""

from __future__ import annotations

from limits.memory_backend import MemoryLimits
from limits.policy import (
    Admission,
    Ask,
    LimitName,
    Limits,
    RateInfo,
    ScopeName,
    Subject,
    Ticket,
    Usage,
)
from limits.protocol import LimitsBackend, LimitsUnavailable
from limits.redis_backend import RedisLimits

__all__ = [
    "Admission",
    "Ask",
    "LimitName",
    "Limits",
    "LimitsBackend",
    "LimitsUnavailable",
    "MemoryLimits",
    "RateInfo",
    "RedisLimits",
    "ScopeName",
    "Subject",
    "Ticket",
    "Usage",
]
