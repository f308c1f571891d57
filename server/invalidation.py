"""Key-cache invalidation messages and their publisher (a Redis pub/sub channel)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError


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


async def publish(redis_url: str | None, namespace: str, message: Invalidation) -> bool:
    """Announce a change to every worker of every replica; False without Redis.

    Without Redis the embedded server notices changes by polling the database instead.
    """
    if redis_url is None:
        return False
    client: Redis = Redis.from_url(redis_url)
    try:
        await client.publish(channel(namespace), message.encode())
    except RedisError:
        return False
    finally:
        await client.aclose()
    return True
