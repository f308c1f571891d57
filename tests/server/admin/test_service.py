"""The admin service layer: tenants, keys, limits within the tenant's, invalidations, usage."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from redis.asyncio import Redis
from tortoise import Tortoise

from config import Settings
from models import ApiKey, KeyStatus, Tenant, TenantStatus, UsageDaily
from server.admin import service as admin
from server.admin.service import AdminError, Changes
from server.auth.apikey import parse_key, verify_key
from server.auth.invalidation import Invalidation, channel, publish
from server.stores.database import database


class Recorder:
    """A notify callable that remembers what it was asked to announce."""

    def __init__(self) -> None:
        self.sent: list[Invalidation] = []

    async def __call__(self, message: Invalidation) -> bool:
        self.sent.append(message)
        return True


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[None]:
    async with database(settings):
        yield
    await Tortoise.close_connections()  # clears the global context server.stores.database leaves set


async def test_create_tenant_and_duplicates(db: None) -> None:
    tenant = await admin.create_tenant(
        "acme", Changes(limits={"rpm": 60, "daily_tokens": 1000}, models=["llama3", "llama3 "])
    )
    row = await Tenant.get(name="acme")
    assert (row.id, row.rpm, row.daily_tokens, row.tpm) == (tenant.id, 60, 1000, None)
    assert row.allowed_models == ["llama3"]
    assert row.status == TenantStatus.ACTIVE
    with pytest.raises(AdminError, match="already exists"):
        await admin.create_tenant("acme")
    with pytest.raises(AdminError, match="name"):
        await admin.create_tenant("  ")
    with pytest.raises(AdminError, match=">= 0"):
        await admin.create_tenant("neg", Changes(limits={"rpm": -1}))
    with pytest.raises(AdminError, match="unknown limit"):
        await admin.create_tenant("odd", Changes(limits={"rpd": 1}))
    with pytest.raises(AdminError, match="models"):
        await admin.create_tenant("empty", Changes(models=[" ", ""]))
    assert await Tenant.all().count() == 1


async def test_create_key_shows_a_key_that_verifies(db: None) -> None:
    await admin.create_tenant("acme", Changes(limits={"rpm": 60}))
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    created = await admin.create_key(
        "acme", "prod-server-1", Changes(limits={"rpm": 60}), expires_days=30, now=now
    )
    presented = parse_key(created.key)
    assert presented is not None and presented.prefix == created.row.prefix
    row = await ApiKey.get(prefix=created.row.prefix)
    assert row.key_hash != created.key and created.key not in row.key_hash
    assert verify_key(row.key_hash, presented)
    assert row.expires_at == now + timedelta(days=30)
    assert row.rpm == 60 and row.log_prompts is None and row.status == KeyStatus.ACTIVE


async def test_key_limits_stay_within_the_tenant(db: None) -> None:
    await admin.create_tenant("acme", Changes(limits={"rpm": 60}, models=["llama3", "qwen2.5"]))
    with pytest.raises(AdminError, match="rpm 61 is above tenant acme's rpm 60"):
        await admin.create_key("acme", "k", Changes(limits={"rpm": 61}))
    with pytest.raises(AdminError, match="not among tenant acme's allowed models"):
        await admin.create_key("acme", "k", Changes(models=["mistral"]))
    assert await ApiKey.all().count() == 0
    # equal is fine, model names compare the way Ollama does (case, :latest)
    key = (await admin.create_key("acme", "k", Changes({"rpm": 60}, models=["LLAMA3:latest"]))).row
    # unset on the tenant means unlimited: any key value is within it
    await admin.set_limits(prefix=key.prefix, changes=Changes({"tpm": 10**9}), notify=Recorder())
    with pytest.raises(AdminError, match="above tenant"):
        await admin.set_limits(prefix=key.prefix, changes=Changes({"rpm": 100}), notify=Recorder())
    assert (await ApiKey.get(id=key.id)).rpm == 60
    # lowering the tenant below the key is allowed (the effective limit is the minimum)
    await admin.set_limits(tenant="acme", changes=Changes({"rpm": 10}), notify=Recorder())
    report = await admin.usage(prefix=key.prefix, today=date(2026, 11, 26))
    assert report.limits.rpm == 10 and report.limits.tpm == 10**9


async def test_duplicate_key_names_and_unknowns(db: None) -> None:
    await admin.create_tenant("acme")
    await admin.create_tenant("other")
    await admin.create_key("acme", "prod")
    await admin.create_key("other", "prod")  # names are unique within a tenant only
    with pytest.raises(AdminError, match="already has a key named 'prod'"):
        await admin.create_key("acme", "prod")
    with pytest.raises(AdminError, match="no tenant named 'nope'"):
        await admin.create_key("nope", "prod")
    with pytest.raises(AdminError, match="no key with prefix nz_00000000"):
        await admin.revoke_key("nz_00000000", notify=Recorder())
    with pytest.raises(AdminError, match="not a key prefix"):
        await admin.revoke_key("nz_short", notify=Recorder())
    with pytest.raises(AdminError, match="expires"):
        await admin.create_key("acme", "x", expires_days=0)


async def test_set_limits_none_clears_and_moves_updated_at(db: None) -> None:
    tenant = await admin.create_tenant("acme", Changes({"rpm": 60, "tpm": 1000}, models=["a"]))
    before = tenant.updated_at
    await asyncio.sleep(0.01)
    notify = Recorder()
    row = await admin.set_limits(
        tenant="acme", changes=Changes({"rpm": None}, models=None), notify=notify
    )
    fresh = await Tenant.get(id=tenant.id)
    assert (fresh.rpm, fresh.tpm, fresh.allowed_models) == (None, 1000, None)
    assert fresh.updated_at > before and row.id == tenant.id
    assert notify.sent == [Invalidation(kind="tenant", id=tenant.id)]

    key = (await admin.create_key("acme", "k", Changes({"tpm": 500}, log_prompts=True))).row
    await admin.set_limits(
        prefix=key.prefix, changes=Changes({"tpm": None}, log_prompts=None), notify=notify
    )
    fresh_key = await ApiKey.get(id=key.id)
    assert (fresh_key.tpm, fresh_key.log_prompts) == (None, None)
    assert notify.sent[-1] == Invalidation(kind="key", id=key.id)
    with pytest.raises(AdminError, match="either"):
        await admin.set_limits(tenant="acme", prefix=key.prefix, changes=Changes(), notify=notify)
    with pytest.raises(AdminError, match="tenant's prompt"):
        await admin.set_limits(tenant="acme", changes=Changes(log_prompts=None), notify=notify)


async def test_key_status_changes_and_revocation_is_final(db: None) -> None:
    await admin.create_tenant("acme")
    key = (await admin.create_key("acme", "k")).row
    notify = Recorder()
    _, changed = await admin.set_key_status(key.prefix, KeyStatus.DISABLED, notify=notify)
    assert changed and (await ApiKey.get(id=key.id)).status == KeyStatus.DISABLED
    _, changed = await admin.set_key_status(key.prefix, KeyStatus.DISABLED, notify=notify)
    assert not changed and len(notify.sent) == 1  # nothing changed, nothing announced
    await admin.set_key_status(key.prefix, KeyStatus.ACTIVE, notify=notify)
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    _, changed = await admin.revoke_key(key.prefix, notify=notify, now=now)
    fresh = await ApiKey.get(id=key.id)
    assert changed and fresh.status == KeyStatus.REVOKED and fresh.revoked_at == now
    assert notify.sent == [Invalidation(kind="key", id=key.id)] * 3
    for status in (KeyStatus.ACTIVE, KeyStatus.DISABLED):
        with pytest.raises(AdminError, match="revocation is final"):
            await admin.set_key_status(key.prefix, status, notify=notify)
    _, changed = await admin.revoke_key(key.prefix, notify=notify)
    assert not changed and (await ApiKey.get(id=key.id)).revoked_at == now


async def test_tenant_status_and_listings(db: None) -> None:
    acme = await admin.create_tenant("acme")
    await admin.create_tenant("beta")
    first = (await admin.create_key("acme", "one")).row
    await admin.create_key("acme", "two")
    await admin.revoke_key(first.prefix, notify=Recorder())
    notify = Recorder()
    disabled = await admin.set_tenant_status("acme", TenantStatus.DISABLED, notify=notify)
    assert disabled.status == TenantStatus.DISABLED
    assert notify.sent == [Invalidation(kind="tenant", id=acme.id)]
    infos = await admin.list_tenants()
    assert [(i.tenant.name, i.active_keys) for i in infos] == [("acme", 1), ("beta", 0)]
    tenant, keys = await admin.list_keys("acme")
    assert tenant.id == acme.id and [k.name for k in keys] == ["one", "two"]
    await admin.set_tenant_status("acme", TenantStatus.ACTIVE, notify=notify)
    assert (await Tenant.get(id=acme.id)).status == TenantStatus.ACTIVE


async def test_usage_report(db: None) -> None:
    await admin.create_tenant("acme", Changes({"daily_tokens": 1000, "monthly_tokens": 5000}))
    key = (await admin.create_key("acme", "k", Changes({"daily_tokens": 100}))).row
    other = (await admin.create_key("acme", "other")).row
    today = date(2026, 11, 26)
    await UsageDaily.create(
        tenant_id=key.tenant_id,
        key=key,
        day=today,
        requests=2,
        prompt_tokens=30,
        completion_tokens=12,
    )
    await UsageDaily.create(
        tenant_id=key.tenant_id,
        key=other,
        day=today,
        requests=1,
        prompt_tokens=5,
        completion_tokens=5,
    )
    report = await admin.usage(prefix=key.prefix, today=today)
    assert report.key is not None and report.key.id == key.id and report.tenant.name == "acme"
    assert report.usage.day_tokens == 42 and report.limits.daily_tokens == 100
    assert report.limits.monthly_tokens == 5000  # inherited
    whole = await admin.usage(tenant="acme", today=today)
    assert whole.key is None and whole.usage.day.requests == 3 and whole.limits.daily_tokens == 1000


async def test_changes_are_published_over_redis(db: None, settings: Settings) -> None:
    assert settings.redis_url is not None
    redis: Redis = Redis.from_url(settings.redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel(settings.redis_namespace))
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    notify = functools.partial(publish, settings)
    await admin.create_tenant("acme")
    key = (await admin.create_key("acme", "k")).row
    await admin.revoke_key(key.prefix, notify=notify)
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
    assert message is not None
    assert Invalidation.decode(message["data"]) == Invalidation(kind="key", id=key.id)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await redis.aclose()
