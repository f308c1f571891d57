"""New entries of every audit shard stream, read as one consumer of the writers' group.

One server: one XREADGROUP over all the streams, blocking until something arrives. A Redis
Cluster refuses that (the streams live in different slots: CROSSSLOT), and a blocking read per
shard would hold a connection per shard, so there every shard is read without blocking, in one
pipeline (one round trip per node), and again every POLL_INTERVAL s until ``block`` is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from limits import AnyRedis, is_cluster

POLL_INTERVAL = 0.1  # s between two cluster reads while every shard is empty

# (shard index, entry id, fields) of one entry read
Read = tuple[int, Any, dict[bytes, bytes]]


async def read_new(
    redis: AnyRedis, group: str, consumer: str, streams: Sequence[str], count: int, block: float
) -> list[Read]:
    """Up to ``count`` entries per stream never delivered to the group, waiting ``block`` s."""
    if is_cluster(redis):
        return await _read_each(redis, group, consumer, streams, count, block)
    return await _read_all(redis, group, consumer, streams, count, block)


async def _read_all(
    redis: AnyRedis, group: str, consumer: str, streams: Sequence[str], count: int, block: float
) -> list[Read]:
    index = {name: n for n, name in enumerate(streams)}
    wanted: dict[Any, Any] = {name: ">" for name in streams}
    replies: Any = await redis.xreadgroup(
        group, consumer, wanted, count=count, block=int(block * 1000) or None
    )
    return [
        (index[text(name)], entry_id, fields)
        for name, items in replies or []
        for entry_id, fields in items
        if fields is not None
    ]


async def _read_each(
    redis: AnyRedis, group: str, consumer: str, streams: Sequence[str], count: int, block: float
) -> list[Read]:
    deadline = time.monotonic() + block
    while True:
        found = await _poll(redis, group, consumer, streams, count)
        left = deadline - time.monotonic()
        if found or left <= 0:
            return found
        await asyncio.sleep(min(POLL_INTERVAL, left))


async def _poll(
    redis: AnyRedis, group: str, consumer: str, streams: Sequence[str], count: int
) -> list[Read]:
    """Every stream once, without blocking. What some shards gave is returned even where
    others failed; when nothing came, the first error is raised (a lost group, NOGROUP, is
    made again by the caller; a node away fails the read, and the writer retries with back-off
    while the entries wait in the streams)."""
    pipe = redis.pipeline(transaction=False)
    for name in streams:
        pipe.xreadgroup(group, consumer, {name: ">"}, count=count)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    found: list[Read] = []
    errors: list[BaseException] = []
    for n, reply in enumerate(replies):
        if isinstance(reply, BaseException):
            errors.append(reply)
            continue
        found += [
            (n, entry_id, fields)
            for _, items in reply or []
            for entry_id, fields in items
            if fields is not None
        ]
    if errors and not found:
        raise errors[0]
    return found


def text(value: bytes | str) -> str:
    """A name or id as str, whether the client returned bytes or str."""
    return value.decode() if isinstance(value, bytes) else value
