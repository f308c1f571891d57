"""O(1) memory: after N requests the state per key and tenant does not grow with N."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from limits import AnyRedis, Ask, Limits, LimitsBackend, MemoryLimits, Subject, Usage

pytestmark = pytest.mark.asyncio
NOW = 1_795_000_000.0
ZERO = Usage(0, 0, 0)
Make = Callable[..., Subject]
ALL = Limits(
    rpm=10**6,
    tpm=10**9,
    max_concurrent=100,
    daily_tokens=10**9,
    monthly_tokens=10**10,
    total_tokens=10**11,
)


async def traffic(backend: LimitsBackend, s: Subject, first: int, n: int, step: float) -> None:
    """n streamed requests, ``step`` seconds apart, each extended once and settled with an event."""
    for i in range(first, first + n):
        now = NOW + i * step
        a = await backend.admit(s, Ask(f"r{i}", 30, None, "stream"), now=now)
        assert a.ticket is not None, a
        ext = await backend.extend(a.ticket, now=now)
        assert ext.granted == 512
        assert await backend.settle(ext.ticket, 700 + i % 300, event=b"e", now=now)


async def redis_sizes(client: AnyRedis, namespace: str) -> dict[str, int]:
    """Every key of the namespace but the audit streams -> its number of fields or members."""
    try:
        out: dict[str, int] = {}
        async for raw in client.scan_iter(match=f"{namespace}:*", count=1000):
            name = raw.decode() if isinstance(raw, bytes) else raw
            kind = cast(bytes, await client.type(name)).decode()
            if kind == "hash":
                out[name] = await client.hlen(name)
            elif kind == "zset":
                out[name] = await client.zcard(name)
            elif kind == "stream":
                assert name.endswith(":events")
            else:
                assert name.endswith(":events:bytes"), name
        return out
    finally:
        await client.aclose()


def memory_sizes(backend: MemoryLimits) -> dict[str, int]:
    out: dict[str, int] = {}
    for tenant_id, tenant in backend._tenants.items():
        out[f"{tenant_id}:open"] = len(tenant.open) + len(tenant.lapsed)
        for name, st in [("", tenant.scope), *tenant.keys.items()]:
            out[f"{tenant_id}:{name}:win"] = len(st.rpm.buckets) + len(st.tpm.buckets)
    return out


@pytest.mark.parametrize("step", [0.25, 0.002])  # 4 requests/s for 300 s; 500/s
async def test_state_does_not_grow_with_requests(
    harness: Any, make_subject: Make, step: float
) -> None:
    backend = harness.make()
    s = make_subject(ALL, ALL)
    await backend.seed(s, ZERO, ZERO, now=NOW)

    async def sizes() -> dict[str, int]:
        if isinstance(backend, MemoryLimits):
            return memory_sizes(backend)
        return await redis_sizes(harness.client(), harness.namespace)

    await traffic(backend, s, 0, 300, step)
    after_300 = await sizes()
    await traffic(backend, s, 300, 900, step)
    after_1200 = await sizes()
    assert after_300.keys() <= after_1200.keys() and len(after_1200) <= 3
    # per scope at most 2 x 60 buckets; nothing in flight
    if harness.kind != "memory":
        # heads: one field per scope, nothing in flight; two rings
        assert sorted(k.rsplit(":", 1)[1] for k in after_1200) == ["heads", "ring", "ring"]
        assert all(v == 2 for k, v in after_1200.items() if k.endswith(":heads"))
        assert all(v <= 120 for v in after_1200.values()), after_1200
    else:
        assert after_1200[f"{s.tenant_id}:open"] == 0
        assert all(v <= 120 for v in after_1200.values()), after_1200
    tenant, key = await backend.usage(s, now=NOW + 1200 * step)
    assert key.total == tenant.total == sum(700 + i % 300 for i in range(1200))
    assert len(await harness.events()) == 1200  # the audit writer trims the streams
