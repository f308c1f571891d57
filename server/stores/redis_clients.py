"""Redis clients made from Settings: one server, or a Redis Cluster; every one fails fast.

The single place a Redis client is made. With ``retries=0`` (the request path) a command that
cannot reach its node raises at once instead of retrying, so fail-closed 503s come within
about a second; a cluster client still follows MOVED/ASK redirects and, on the next command,
refreshes its map of the nodes after an error.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from config import Settings
from config.redis_target import RedisTarget
from limits import AnyRedis

POOL_SIZE = 64  # connections of one client to one server; more callers wait for one
# per node of a cluster: its client raises at the cap instead of waiting, so it is higher
CLUSTER_POOL_SIZE = 256
HEALTH_CHECK_INTERVAL = 10


def _target(settings: Settings) -> RedisTarget:
    target = settings.redis
    if target is None:
        raise ValueError("REDIS_URL is not set")
    return target


def _retry(retries: int) -> Retry:
    if retries <= 0:
        return Retry(NoBackoff(), 0)
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries)


def open_redis(
    settings: Settings,
    *,
    timeout: float = 2.0,
    connect_timeout: float = 1.0,
    retries: int = 0,
) -> AnyRedis:
    """A client for REDIS_URL: ``timeout`` bounds a reply (and, on one server, the wait for a
    free connection), ``connect_timeout`` a connection, ``retries`` the retries of a command."""
    target = _target(settings)
    if target.cluster:
        return RedisCluster.from_url(
            target.url,
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes[1:]],
            max_connections=CLUSTER_POOL_SIZE,
            socket_timeout=timeout,
            socket_connect_timeout=connect_timeout,
            retry=_retry(retries),
            health_check_interval=HEALTH_CHECK_INTERVAL,
        )
    return _server(target.url, timeout, connect_timeout, retries)


def open_servers(
    settings: Settings, *, timeout: float = 2.0, connect_timeout: float = 1.0, retries: int = 0
) -> list[Redis]:
    """A client of each server on its own: the one server, or each startup node of a cluster
    (for what any node answers, PUBLISH: a fresh cluster client cannot start while the node it
    asks first is down). Opened lazily: one that is not used costs nothing."""
    target = _target(settings)
    return [_server(url, timeout, connect_timeout, retries) for url in target.server_urls]


def _server(url: str, timeout: float, connect_timeout: float, retries: int) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=timeout,
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        retry=_retry(retries),
        health_check_interval=HEALTH_CHECK_INTERVAL,
    )
    return Redis(connection_pool=pool)
