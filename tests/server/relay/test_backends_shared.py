"""max_concurrent across workers through Redis leases, the in-flight snapshots, failure modes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis, RedisCluster

from config import Backend, Settings
from limits import AnyRedis
from server.errors import Unavailable
from server.relay.backends import BackendRegistry
from server.relay.shared import leases_key, read_in_flight
from server.relay.slots import PUBLISH_DELAY, BackendsFull
from tests.conftest import REDIS_URL

MODEL = "llama3.2"
Workers = Callable[..., BackendRegistry]


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError("these tests never send")


@pytest.fixture(params=["redis", "cluster"])
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[AnyRedis]:
    """One Redis, or a Redis Cluster (lease sets and snapshots on different nodes)."""
    client: AnyRedis
    if request.param == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("cluster_url"))
    else:
        client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def worker(redis_namespace: str) -> AsyncIterator[Workers]:
    """Registries as separate workers would hold them: one Redis namespace, own counts."""
    made: list[BackendRegistry] = []

    def make(*backends: Backend, queue_timeout: float = 0.0) -> BackendRegistry:
        settings = Settings(
            backends=backends, backend_queue_timeout=queue_timeout, redis_namespace=redis_namespace
        )
        registry = BackendRegistry.build(settings, httpx.MockTransport(_refuse))
        for state in registry.states:
            registry.note_models(state, [MODEL])
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.aclose()


async def test_max_concurrent_holds_across_workers(
    worker: Workers, redis: AnyRedis, redis_namespace: str
) -> None:
    capped = Backend("gpu", "http://a", max_concurrent=3)
    one, two = worker(capped), worker(capped)
    held = [await one.router(MODEL, shared=redis).take() for _ in range(2)]
    held.append(await two.router(MODEL, shared=redis).take())
    for registry in (one, two):
        with pytest.raises(BackendsFull):
            await registry.router(MODEL, shared=redis).take()
    assert await redis.zcard(leases_key(redis_namespace, "gpu")) == 3
    assert (one.states[0].in_flight, two.states[0].in_flight) == (2, 1)
    held[0].release()
    await asyncio.sleep(0.05)  # the lease is given back in the background
    again = await two.router(MODEL, shared=redis).take()
    assert again.state.name == "gpu" and two.states[0].in_flight == 2
    for slot in (*held[1:], again):
        slot.release()
    await asyncio.sleep(0.05)
    assert await redis.zcard(leases_key(redis_namespace, "gpu")) == 0


async def test_a_waiter_is_served_when_another_worker_frees_a_slot(
    worker: Workers, redis: AnyRedis
) -> None:
    capped = Backend("gpu", "http://a", max_concurrent=1)
    one, two = worker(capped), worker(capped, queue_timeout=3.0)
    held = await one.router(MODEL, shared=redis).take()
    waiting = asyncio.create_task(two.router(MODEL, shared=redis).take())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    loop = asyncio.get_running_loop()
    freed = loop.time()
    held.release()
    slot = await asyncio.wait_for(waiting, timeout=2.0)
    assert loop.time() - freed < 1.0  # within a few polls, not at the timeout
    slot.release()


async def test_uncapped_backends_never_touch_redis(worker: Workers) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        registry = worker(Backend("open", "http://a"))
        slot = await registry.router(MODEL, shared=broken).take()
        slot.release()
    finally:
        await broken.aclose()


async def test_redis_down_is_503_for_a_capped_backend_and_leaves_no_count(
    worker: Workers,
) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        registry = worker(Backend("gpu", "http://a", max_concurrent=2))
        with pytest.raises(Unavailable) as down:
            await registry.router(MODEL, shared=broken).take()
        assert down.value.headers["Retry-After"] == "1" and "Redis" in down.value.message
        assert registry.states[0].in_flight == 0
    finally:
        await broken.aclose()


async def test_snapshots_sum_the_workers_counts(
    worker: Workers, redis: AnyRedis, redis_namespace: str
) -> None:
    backends = (Backend("a", "http://a", group=0), Backend("b", "http://b", group=0))
    one, two = worker(*backends), worker(*backends)
    held = [await one.router(MODEL, shared=redis).take() for _ in range(3)]
    held += [await two.router(MODEL, shared=redis).take() for _ in range(2)]
    await asyncio.sleep(PUBLISH_DELAY + 0.2)
    expected = {n: one.slots.counts()[n] + two.slots.counts()[n] for n in ("a", "b")}
    assert sum(expected.values()) == 5
    assert await read_in_flight(redis, redis_namespace) == expected
    for slot in held:
        slot.release()
    await asyncio.sleep(PUBLISH_DELAY + 0.2)
    assert await read_in_flight(redis, redis_namespace) == {"a": 0, "b": 0}
    await one.aclose()  # a graceful stop withdraws its snapshot
    await two.aclose()
    assert await read_in_flight(redis, redis_namespace) == {}


async def test_leases_of_a_dead_worker_expire_and_live_ones_are_renewed(
    worker: Workers, redis: AnyRedis, redis_namespace: str
) -> None:
    capped = Backend("gpu", "http://a", max_concurrent=2)
    dead, alive, other = worker(capped), worker(capped), worker(capped)
    for registry in (dead, alive, other):
        registry.slots.lease_ttl = 0.6  # instead of three probe intervals
    await dead.router(MODEL, shared=redis).take()  # never released: the worker "died"
    await alive.router(MODEL, shared=redis).take()
    with pytest.raises(BackendsFull):
        await other.router(MODEL, shared=redis).take()
    for _ in range(4):
        await asyncio.sleep(0.25)
        await alive.slots.heartbeat()  # the live worker's loop renews its lease
    slot = await other.router(MODEL, shared=redis).take()  # the dead one's lease lapsed
    with pytest.raises(BackendsFull):  # the renewed one did not
        await other.router(MODEL, shared=redis).take()
    slot.release()
