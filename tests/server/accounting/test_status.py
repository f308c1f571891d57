"""queue_status: what /readyz detail and /metrics show of the audit queue."""

from __future__ import annotations

import asyncio

from server.accounting.recorder import Recorder
from server.accounting.status import queue_status
from tests.server.accounting.conftest import Streams, event


async def test_redis_status_counts_backlog_bytes_age_and_dead_letters(streams: Streams) -> None:
    empty = await queue_status(redis=streams.redis, namespace=streams.namespace)
    assert empty == {
        "queue": "redis",
        "backlog": 0,
        "bytes": 0,
        "dead_letters": 0,
        "oldest_age_s": None,
    }
    first, second = event("a"), event("b")
    await streams.append(first, shard=2)
    await asyncio.sleep(0.3)
    await streams.append(second, shard=9)
    await streams.redis.xadd(streams.shards[5].dead, {"e": b"x", "why": "refused"})
    local = Recorder(postgres=True)
    local.append(first)
    status = await queue_status(redis=streams.redis, namespace=streams.namespace, local=local)
    assert status["backlog"] == 2 and status["bytes"] == len(first) + len(second)
    assert status["dead_letters"] == 1
    age = status["oldest_age_s"]
    assert isinstance(age, float) and 0.3 <= age < 10
    local_status = status["local"]
    assert isinstance(local_status, dict)
    assert local_status["backlog"] == 1 and local_status["bytes"] == len(first)


async def test_memory_status_is_the_in_process_queue_and_its_writer() -> None:
    local = Recorder(postgres=False)
    local.append(event("a"))
    status = await queue_status(redis=None, namespace="unused", local=local)
    assert status["queue"] == "memory" and status["backlog"] == 1
    assert status["dead_letters"] == 0
    writer = status["writer"]
    assert isinstance(writer, dict) and writer["written"] == 0 and writer["down_since"] is None
