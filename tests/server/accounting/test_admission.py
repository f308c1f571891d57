"""Admission around the limits backend, in process against real Redis and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from config import Settings
from limits import Ask, Limits, RedisLimits
from models import ApiKey, Tenant, UsageDaily
from server.accounting.admission import admit, settle, subject_of, usage_of
from server.auth.principal import Principal, build_principal
from server.errors import RateLimited, Unavailable
from server.stores.database import database
from tests.conftest import REDIS_URL

UTC_ZONE = Settings().tz


@pytest.fixture
async def principal(settings: Settings) -> AsyncIterator[Principal]:
    """A key of a tenant with a 1,000-token daily budget, with 900 already in the ledger."""
    async with database(settings):
        tenant = await Tenant.create(name=f"t{uuid.uuid4().hex[:6]}", daily_tokens=1000)
        key = await ApiKey.create(tenant=tenant, name="k", prefix="nz_abcdefgh", key_hash="x")
        await UsageDaily.create(
            tenant_id=tenant.id,
            key_id=key.id,
            day=datetime.now(UTC).date(),
            requests=3,
            prompt_tokens=400,
            completion_tokens=500,
        )
        yield build_principal(key, tenant)


@pytest.fixture
async def limits(redis_namespace: str) -> AsyncIterator[RedisLimits]:
    client = Redis.from_url(REDIS_URL)
    yield RedisLimits(client, namespace=redis_namespace, owns_client=False)
    await client.aclose()


def _ask(prompt: int = 50, max_output: int | None = 20) -> Ask:
    return Ask(uuid.uuid4().hex, prompt_tokens=prompt, max_output=max_output, output="single")


async def test_counters_are_seeded_from_the_ledger_before_admitting(
    principal: Principal, limits: RedisLimits
) -> None:
    admission = await admit(limits, UTC_ZONE, principal, _ask())
    assert admission.allowed and admission.ticket is not None
    await settle(limits, admission.ticket, 70)
    tenant, key = await usage_of(limits, UTC_ZONE, subject_of(principal))
    assert key.day == tenant.day == 970  # 900 from the ledger + 70 settled


async def test_a_spent_budget_is_a_429_that_says_so(
    principal: Principal, limits: RedisLimits
) -> None:
    with pytest.raises(RateLimited) as refused:
        await admit(limits, UTC_ZONE, principal, _ask(prompt=200))
    error = refused.value
    assert error.headers["x-gateway-limit"] == "key:daily_tokens"
    assert error.headers["x-should-retry"] == "false" and error.code == "insufficient_quota"
    assert "daily token budget (1000)" in error.message


async def test_an_unreachable_redis_fails_closed(principal: Principal) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    dead = RedisLimits(client, namespace="nowhere", owns_client=False)
    with pytest.raises(Unavailable) as refused:
        await admit(dead, UTC_ZONE, principal, _ask())
    assert refused.value.headers["Retry-After"] == "1"
    await client.aclose()


def test_key_limits_inherit_the_tenant_budget(principal: Principal) -> None:
    assert principal.key_limits == Limits(daily_tokens=1000)
