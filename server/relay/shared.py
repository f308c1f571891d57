"""Backend state shared through Redis: capacity leases (max_concurrent) and in-flight snapshots.

Only backends with a max_concurrent pay a Redis round trip per request (take, then release in
the background); the least-loaded choice itself uses this worker's counts. Each worker also
publishes its in-flight counts, at most a few times a second and off the request path, for
`list-backends`. Redis errors become Unavailable (503): a cap is never silently per worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from limits import REDIS_ERRORS, run_script
from server.errors import Unavailable

if TYPE_CHECKING:
    from limits import AnyRedis

# KEYS[1] a backend's lease set (zset: lease id -> expiry in ms, Redis clock)
# ARGV[1] lease id, ARGV[2] max_concurrent, ARGV[3] lease ttl in ms
# Returns 1 when the lease was taken, 0 when the backend is at its max_concurrent.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# KEYS[1] a backend's lease set; ARGV[1] lease ttl in ms, ARGV[2..] the leases this worker holds
# Pushes their expiry forward (never re-adds a lease released meanwhile). Returns nothing.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""


@contextmanager
def redis_errors() -> Iterator[None]:
    """Translate redis errors into a 503 that says what could not be checked."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise Unavailable(
            "backend capacity cannot be checked right now (Redis unreachable)",
            headers={"Retry-After": "1"},
        ) from exc


def leases_key(namespace: str, backend: str) -> str:
    """The lease set of one backend (one key per script call: fine on Redis Cluster)."""
    return f"{namespace}:backend-slots:{backend}"


def snapshot_key(namespace: str, worker: str) -> str:
    """One worker's published in-flight counts."""
    return f"{namespace}:backends-inflight:{worker}"


class SharedSlots:
    """Leases and snapshots of one worker, in one Redis namespace."""

    def __init__(self, redis: AnyRedis, namespace: str, ttl: float, worker: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl_ms = max(1, int(ttl * 1000))
        self.worker = worker
        self._take = redis.register_script(TAKE)
        self._renew = redis.register_script(RENEW)

    async def take(self, backend: str, lease: str, cap: int) -> bool:
        """Take one of the backend's max_concurrent leases; False when all are held."""
        with redis_errors():
            keys = [leases_key(self.namespace, backend)]
            taken = await run_script(self.redis, self._take, keys, [lease, cap, self.ttl_ms])
        return bool(taken)

    async def release(self, backend: str, lease: str) -> None:
        """Give a lease back (idempotent)."""
        await self.redis.zrem(leases_key(self.namespace, backend), lease)

    async def heartbeat(self, held: Mapping[str, set[str]], counts: Mapping[str, int]) -> None:
        """Renew the leases this worker holds and republish its counts."""
        for backend, leases in held.items():
            if leases:
                keys = [leases_key(self.namespace, backend)]
                await run_script(self.redis, self._renew, keys, [self.ttl_ms, *leases])
        await self.publish(counts)

    async def publish(self, counts: Mapping[str, int]) -> None:
        """This worker's in-flight counts, expiring with its leases if it dies."""
        await self.redis.set(
            snapshot_key(self.namespace, self.worker), json.dumps(dict(counts)), px=self.ttl_ms
        )

    async def forget(self) -> None:
        """Remove this worker's snapshot (a graceful stop)."""
        await self.redis.delete(snapshot_key(self.namespace, self.worker))


async def read_in_flight(redis: AnyRedis, namespace: str) -> dict[str, int]:
    """In-flight counts per backend, summed over every live worker of every replica."""
    total: dict[str, int] = {}
    keys = [key async for key in redis.scan_iter(match=snapshot_key(namespace, "*"), count=500)]
    for key in keys:  # one GET each, not MGET: the keys may sit on different cluster slots
        raw = await redis.get(key)
        try:
            counts = json.loads(raw) if raw else {}
        except ValueError:
            continue
        for name, n in counts.items() if isinstance(counts, dict) else ():
            if isinstance(n, int):
                total[name] = total.get(name, 0) + n
    return total
