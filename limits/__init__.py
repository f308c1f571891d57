"""Rate limits, concurrency leases, token budgets and the audit queue, on Redis or in memory."""

from __future__ import annotations

from limits.events import EventQueue, QueuedEvent
from limits.keyspace import EVENT_SHARDS, EventStream, KeySpace, shard_of
from limits.memory_backend import MemoryLimits
from limits.policy import (
    Admission,
    Ask,
    Extension,
    LimitName,
    Limits,
    OutputKind,
    RateInfo,
    ScopeName,
    Subject,
    Ticket,
    Usage,
)
from limits.protocol import (
    LAPSE_GRACE_S,
    NON_STREAM_OUTPUT_CAP,
    OUTPUT_RESERVE_STEP,
    LimitsBackend,
    LimitsUnavailable,
)
from limits.redis_backend import RedisLimits
from limits.redis_client import REDIS_ERRORS, AnyRedis, is_cluster, run_script

__all__ = [
    "EVENT_SHARDS",
    "LAPSE_GRACE_S",
    "NON_STREAM_OUTPUT_CAP",
    "OUTPUT_RESERVE_STEP",
    "REDIS_ERRORS",
    "Admission",
    "AnyRedis",
    "Ask",
    "EventQueue",
    "EventStream",
    "Extension",
    "KeySpace",
    "LimitName",
    "Limits",
    "LimitsBackend",
    "LimitsUnavailable",
    "MemoryLimits",
    "OutputKind",
    "QueuedEvent",
    "RateInfo",
    "RedisLimits",
    "ScopeName",
    "Subject",
    "Ticket",
    "Usage",
    "is_cluster",
    "run_script",
    "shard_of",
]
