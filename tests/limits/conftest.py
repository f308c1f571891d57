"""Fixtures for the limits tests: every test body runs against each backend (in memory, one
Redis, and a Redis Cluster of three masters the session starts)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from redis.asyncio import Redis, RedisCluster

from limits import AnyRedis, KeySpace, Limits, LimitsBackend, MemoryLimits, RedisLimits, Subject

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
UTC = ZoneInfo("UTC")


async def read_events(client: AnyRedis, namespace: str) -> list[bytes]:
    """The events of every audit stream of a namespace, shard by shard."""
    out: list[bytes] = []
    for stream in KeySpace(namespace).event_streams():
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream.stream))
        out.extend(fields[b"e"] for _, fields in entries)
    return out


@dataclass
class Harness:
    """Builds backends of one kind for a test and can wipe their state like a Redis restart."""

    kind: str
    namespace: str
    made: list[LimitsBackend] = field(default_factory=list)
    clients: list[AnyRedis] = field(default_factory=list)
    cluster_url: str | None = None  # kind "cluster": a node of it

    def client(self) -> AnyRedis:
        """A new client of this harness's Redis (one server, or the cluster)."""
        if self.cluster_url is not None:
            return RedisCluster.from_url(self.cluster_url)
        return Redis.from_url(REDIS_URL)

    def make(self, **kwargs: Any) -> LimitsBackend:
        """A backend of this kind; Redis ones of one test share the test's namespace."""
        backend: LimitsBackend
        if self.kind == "memory":
            backend = MemoryLimits(**kwargs)
        else:
            client = self.client()
            self.clients.append(client)
            backend = RedisLimits(client, namespace=self.namespace, owns_client=False, **kwargs)
        self.made.append(backend)
        return backend

    async def events(self) -> list[bytes]:
        """Every audit event appended so far (Redis: all streams of the namespace, by shard)."""
        if self.kind == "memory":
            out: list[bytes] = []
            for backend in self.made:
                assert isinstance(backend, MemoryLimits)
                backend.events.take(10**9)
                out.extend(e.data for e in backend.events.pending())
            return out
        client = self.client()
        try:
            return await read_events(client, self.namespace)
        finally:
            await client.aclose()

    async def queued_bytes(self) -> int:
        """The audit queue's byte count (Redis: summed over the byte counters)."""
        if self.kind == "memory":
            return sum(b.events.size_bytes for b in self.made if isinstance(b, MemoryLimits))
        client = self.client()
        try:
            streams = KeySpace(self.namespace).event_streams()
            values = [await client.get(s.bytes) for s in streams]  # one slot each
            return sum(int(v or 0) for v in values)
        finally:
            await client.aclose()

    async def wipe(self) -> None:
        """Lose every counter, lease and marker (FLUSHDB for this namespace)."""
        if self.kind == "memory":
            for backend in self.made:
                await backend.close()
            return
        client = self.client()
        try:
            keys = [k async for k in client.scan_iter(match=f"{self.namespace}:*", count=1000)]
            for key in keys:  # one slot each
                await client.delete(key)
        finally:
            await client.aclose()


@pytest_asyncio.fixture(params=["memory", "redis", "cluster"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """One harness per backend kind, with a unique Redis namespace cleaned up afterwards."""
    h = Harness(kind=request.param, namespace=f"nzgw-test-{uuid.uuid4().hex}")
    if h.kind == "cluster":
        h.cluster_url = request.getfixturevalue("cluster_url")
    try:
        yield h
    finally:
        if h.kind != "memory":
            await h.wipe()
        for client in h.clients:
            await client.aclose()


@pytest_asyncio.fixture
async def redis_harness() -> AsyncIterator[Harness]:
    """A Redis harness alone, for what only Redis has (shards)."""
    h = Harness(kind="redis", namespace=f"nzgw-test-{uuid.uuid4().hex}")
    try:
        yield h
    finally:
        await h.wipe()
        for client in h.clients:
            await client.aclose()


@pytest.fixture
def redis_url() -> str:
    """The Redis the tests use (``REDIS_URL`` overrides the local default)."""
    return REDIS_URL


@pytest_asyncio.fixture
async def backend(harness: Harness) -> LimitsBackend:
    """A backend with the default settings (UTC, lease ttl 900 s)."""
    return harness.make()


SubjectFactory = Callable[..., Subject]


def _subject(
    key: Limits | None = None,
    tenant: Limits | None = None,
    *,
    tenant_id: str = "t1",
    key_id: str = "k1",
) -> Subject:
    return Subject(
        tenant_id=tenant_id, key_id=key_id, tenant=tenant or Limits(), key=key or Limits()
    )


@pytest.fixture
def make_subject() -> SubjectFactory:
    """Builds a subject: ``make_subject(key_limits, tenant_limits, tenant_id=, key_id=)``."""
    return _subject
