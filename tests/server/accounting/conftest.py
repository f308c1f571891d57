"""Fixtures for the audit tests: a Redis client on a private namespace, streams filled by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from tortoise import Tortoise

from config import Settings
from models import ApiKey, Tenant
from server.accounting.event import encode_event
from server.accounting.queue import ShardKeys, shard_keys
from server.accounting.record import RequestRecord
from server.stores.database import database
from tests.conftest import REDIS_URL


@dataclass
class Streams:
    """The audit streams of one test's namespace, appended to as the limits scripts do."""

    redis: Redis
    namespace: str
    shards: list[ShardKeys] = field(init=False)

    def __post_init__(self) -> None:
        self.shards = shard_keys(self.namespace)

    async def append(self, data: bytes, shard: int = 0) -> str:
        """XADD an entry (field e) and count its bytes, like settle/record do."""
        keys = self.shards[shard]
        entry_id = await self.redis.xadd(keys.stream, {"e": data})
        await self.redis.incrby(keys.bytes, len(data))
        return entry_id.decode()

    async def lengths(self) -> list[int]:
        """XLEN of every stream."""
        return [await self.redis.xlen(s.stream) for s in self.shards]

    async def counters(self) -> list[int]:
        """Every byte counter."""
        return [int(await self.redis.get(s.bytes) or 0) for s in self.shards]

    async def pending(self) -> int:
        """Entries read by some consumer of the group and not acknowledged, over every stream."""
        total = 0
        for s in self.shards:
            if await self.redis.exists(s.stream):
                info = await self.redis.xpending(s.stream, "writers")
                total += int(info["pending"])
        return total


@pytest.fixture
async def streams(redis_namespace: str) -> AsyncIterator[Streams]:
    """A bytes Redis client on the test's namespace; its keys are deleted afterwards."""
    client = Redis.from_url(REDIS_URL)
    yield Streams(client, redis_namespace)
    keys = [k async for k in client.scan_iter(match=f"{redis_namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def key(settings: Settings) -> AsyncIterator[ApiKey]:
    """The test's PostgreSQL database open in Tortoise, with a tenant and a key."""
    async with database(settings):
        tenant = await Tenant.create(name="acme")
        yield await ApiKey.create(tenant=tenant, name="k", prefix="nz_abcdefgh", key_hash="x")
    await Tortoise.close_connections()


def event(rid: str, key: ApiKey | None = None, **fields: object) -> bytes:
    """The event bytes of one charged request of `key` (or a refused one without a key)."""
    values: dict[str, object] = {
        "request_id": rid,
        "surface": "api",
        "method": "POST",
        "path": "/api/chat",
        "status": 200 if key else 401,
        "time": datetime(2026, 11, 30, 12, tzinfo=UTC),
    }
    if key is not None:
        values |= {
            "tenant_id": key.tenant_id,
            "key_id": key.id,
            "key_prefix": key.prefix,
            "model": "llama3.2",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "usage_day": "2026-11-30",
        }
    return encode_event(RequestRecord(**(values | fields)))  # type: ignore[arg-type]
