"""open_redis: one server or a Redis Cluster from Settings, both failing fast."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from config import Settings
from limits import REDIS_ERRORS
from server.stores.redis_clients import POOL_SIZE, open_redis
from tests.conftest import REDIS_URL
from tests.gateway import free_port


async def test_one_server_gets_a_bounded_pool_without_retries() -> None:
    client = open_redis(Settings(redis_url=REDIS_URL))
    try:
        assert isinstance(client, Redis)
        pool = client.connection_pool
        assert isinstance(pool, BlockingConnectionPool) and pool.max_connections == POOL_SIZE
        assert client.get_connection_kwargs()["retry"].get_retries() == 0
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_cluster_url_gets_a_cluster_client_with_every_startup_node() -> None:
    client = open_redis(Settings(redis_url="redis+cluster://10.9.9.1:7000,10.9.9.2:7001"))
    try:
        assert isinstance(client, RedisCluster)
        assert {n.name for n in client.startup_nodes} == {"10.9.9.1:7000", "10.9.9.2:7001"}
        assert client.retry.get_retries() == 0
        assert client.get_connection_kwargs()["socket_timeout"] == 2.0
    finally:
        await client.aclose()


@pytest.mark.parametrize("cluster", [False, True])
async def test_an_unreachable_redis_fails_within_a_second(cluster: bool) -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    client = open_redis(Settings(redis_url=url, redis_cluster=cluster))
    started = time.monotonic()
    try:
        with pytest.raises(REDIS_ERRORS):
            await client.ping()
    finally:
        await client.aclose()
    assert time.monotonic() - started < 1.0
