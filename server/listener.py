"""Background tasks that evict cached keys when an operator changes them."""

from __future__ import annotations

import asyncio

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tortoise import connections
from tortoise.exceptions import BaseORMException

from server.invalidation import Invalidation, channel
from server.keycache import KeyCache

_CHANGES = (
    "SELECT (SELECT max(updated_at) FROM api_keys) AS k, (SELECT max(updated_at) FROM tenants) AS t"
)


def apply(cache: KeyCache, message: Invalidation) -> None:
    """Evict what one invalidation names."""
    if message.kind == "key":
        cache.evict_key(message.id)
    else:
        cache.evict_tenant(message.id)


async def listen_redis(redis: Redis, namespace: str, cache: KeyCache, ready: asyncio.Event) -> None:
    """Follow the invalidation channel for ever; after a lost connection, clear the cache."""
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
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
        except (RedisError, OSError) as exc:
            logger.warning("invalidation channel lost ({}); retrying", type(exc).__name__)
            await asyncio.sleep(1.0)
        finally:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
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
