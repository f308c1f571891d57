"""Key-cache invalidation: the messages, their publisher (Redis pub/sub) and the subscribers.

On a Redis Cluster a message published on any node reaches the subscribers of every node, so a
worker subscribes on one node and, when that one fails, on the next.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Literal

from loguru import logger
from redis.asyncio import RedisCluster
from redis.asyncio.client import PubSub
from tortoise import connections
from tortoise.exceptions import BaseORMException

from config import Settings
from limits import REDIS_ERRORS, AnyRedis
from server.auth.keycache import KeyCache
from server.stores.redis_clients import open_servers


def channel(namespace: str) -> str:
    """The pub/sub channel of one deployment (tests use their own namespace)."""
    return f"{namespace}:invalidate"


@dataclass(frozen=True, slots=True)
class Invalidation:
    """Evict cached principals of one key, or of every key of one tenant."""

    kind: Literal["key", "tenant"]
    id: int

    def encode(self) -> str:
        """The wire form on the channel."""
        return json.dumps({"kind": self.kind, "id": self.id})

    @staticmethod
    def decode(raw: str | bytes) -> Invalidation | None:
        """Parse a message; None when it is not one of ours."""
        try:
            data = json.loads(raw)
            kind, ident = data["kind"], int(data["id"])
        except (ValueError, KeyError, TypeError):
            return None
        if kind not in ("key", "tenant"):
            return None
        return Invalidation(kind=kind, id=ident)


async def publish(settings: Settings, message: Invalidation) -> bool:
    """Announce a change to every worker of every replica; False without Redis.

    On a cluster it is published on the first startup node that answers: a message published
    on any node reaches the subscribers of every node. Without Redis the embedded server
    notices changes by polling the database instead.
    """
    if settings.redis_url is None:
        return False
    data = message.encode()
    for client in open_servers(settings, timeout=2.0, connect_timeout=1.0, retries=1):
        try:
            await client.publish(channel(settings.redis_namespace), data)
            return True
        except REDIS_ERRORS as exc:
            logger.info("invalidation not published ({})", type(exc).__name__)
        finally:
            await client.aclose()
    return False


_CHANGES = (
    "SELECT (SELECT max(updated_at) FROM api_keys) AS k, (SELECT max(updated_at) FROM tenants) AS t"
)


def apply(cache: KeyCache, message: Invalidation) -> None:
    """Evict what one invalidation names."""
    if message.kind == "key":
        cache.evict_key(message.id)
    else:
        cache.evict_tenant(message.id)


async def _subscriber(redis: AnyRedis, attempt: int) -> PubSub:
    """A pub/sub connection; on a cluster, to one node, the next one after each failure
    (workers start at different nodes, by pid, to spread the subscriptions)."""
    if not isinstance(redis, RedisCluster):
        return redis.pubsub(ignore_subscribe_messages=True)
    await redis.initialize()  # the nodes are known once the client has its map
    nodes = sorted(redis.get_nodes(), key=lambda node: node.name)
    node = nodes[(os.getpid() + attempt) % len(nodes)]
    return redis.pubsub(node=node, ignore_subscribe_messages=True)


async def listen_redis(
    redis: AnyRedis, namespace: str, cache: KeyCache, ready: asyncio.Event
) -> None:
    """Follow the invalidation channel for ever; after a lost connection, clear the cache."""
    attempt = 0
    while True:
        pubsub: PubSub | None = None
        try:
            pubsub = await _subscriber(redis, attempt)
            await pubsub.subscribe(channel(namespace))
            cache.clear()  # anything published while we were away is unknown
            ready.set()
            while True:
                msg = await pubsub.get_message(timeout=5.0)
                if msg is None or msg.get("type") != "message":
                    continue
                parsed = Invalidation.decode(msg["data"])
                if parsed is not None:
                    apply(cache, parsed)
        except REDIS_ERRORS as exc:
            logger.warning("invalidation channel lost ({}); retrying", type(exc).__name__)
            attempt += 1
            await asyncio.sleep(1.0)
        finally:
            if pubsub is not None:
                try:
                    await pubsub.aclose()
                except REDIS_ERRORS:
                    pass


async def poll_database(cache: KeyCache, ready: asyncio.Event, interval: float = 1.0) -> None:
    """Without Redis: clear the cache whenever a key or tenant row changed."""
    seen: tuple[object, object] | None = None
    while True:
        try:
            rows = await connections.get("default").execute_query_dict(_CHANGES)
            current = (rows[0]["k"], rows[0]["t"])
            if seen is not None and current != seen:
                cache.clear()
            seen = current
            ready.set()
        except (BaseORMException, OSError) as exc:
            logger.warning("change poll failed ({})", type(exc).__name__)
        await asyncio.sleep(interval)
