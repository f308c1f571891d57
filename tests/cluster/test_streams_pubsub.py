"""The gateway's Redis parts on the cluster, in-process: the audit source over every shard, and
an invalidation subscriber that loses its node.

Runs after test_scale_out (files run in name order): the node killed here leaves the gateways
connections that fail once at their next use (a 503, by design: no retries), which must not
land in the middle of test_scale_out's exact counts."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

from config import Settings
from limits import KeySpace
from server.accounting.queue import StreamSource
from server.auth.invalidation import Invalidation, channel, listen_redis, publish
from server.auth.keycache import KeyCache
from server.stores.redis_clients import open_redis
from tests.redis_cluster import LocalCluster


def _settings(redis_cluster: LocalCluster) -> Settings:
    return Settings(redis_url=redis_cluster.url, redis_namespace=f"nzgw-t-{uuid.uuid4().hex[:12]}")


async def test_the_audit_source_reads_every_shard_and_makes_a_lost_group_again(
    redis_cluster: LocalCluster,
) -> None:
    settings = _settings(redis_cluster)
    client = open_redis(settings, timeout=10.0, connect_timeout=2.0, retries=3)
    streams = [s.stream for s in KeySpace(settings.redis_namespace).event_streams()]
    source = StreamSource(client, settings.redis_namespace)
    try:
        await source.prepare()
        started = time.monotonic()
        assert await source.take(100, 0.3) == []  # nothing there: it waited, without blocking
        assert time.monotonic() - started >= 0.3
        for n, stream in enumerate(streams):
            await client.xadd(stream, {"e": f"event-{n}".encode()})
        taken = await source.take(100, 0.3)
        assert sorted((e.shard, e.data) for e in taken) == sorted(
            (n, f"event-{n}".encode()) for n in range(len(streams))
        )
        assert (await source.status()).backlog == len(streams)
        await source.ack(taken)
        assert (await source.status()).backlog == 0

        for stream in streams:  # what a node that came back empty has lost
            await client.delete(stream)
        await client.xadd(streams[3], {"e": b"after"})
        assert await source.take(100, 0) == []  # NOGROUP: the group is made again
        assert [(e.shard, e.data) for e in await source.take(100, 0.3)] == [(3, b"after")]
    finally:
        await client.aclose()


def _subscribed_on(redis_cluster: LocalCluster, name: str) -> list[int]:
    """The nodes where `name` has a subscriber (PUBSUB NUMSUB is per node)."""
    return [
        port
        for port in redis_cluster.ports
        if redis_cluster.cli(port, "PUBSUB", "NUMSUB", name).splitlines()[1:] == ["1"]
    ]


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_subscriber_whose_node_dies_follows_the_channel_on_another(
    redis_cluster: LocalCluster,
) -> None:
    settings = _settings(redis_cluster)
    name = channel(settings.redis_namespace)
    client = open_redis(settings)
    cache = KeyCache(size=10, ttl=60, negative_ttl=60)
    ready = asyncio.Event()
    task = asyncio.create_task(listen_redis(client, settings.redis_namespace, cache, ready))
    first: int | None = None
    try:
        await asyncio.wait_for(ready.wait(), timeout=5)
        [first] = _subscribed_on(redis_cluster, name)
        assert first is not None
        seen = cache.generation
        assert await publish(settings, Invalidation("key", 1))
        await _until(lambda: cache.generation > seen)

        redis_cluster.kill(first)
        await _until(lambda: bool(_subscribed_on(redis_cluster, name)))
        assert _subscribed_on(redis_cluster, name) != [first]
        seen = cache.generation
        # published while the node is away, by a CLI whose URL names that node first
        others = [p for p in redis_cluster.ports if p != first]
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in (first, *others))
        assert await publish(settings.with_(redis_url=url), Invalidation("tenant", 1))
        await _until(lambda: cache.generation > seen)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()
        if first is not None and first not in redis_cluster.procs:
            redis_cluster.start_node(first)
            redis_cluster.wait_ok()
