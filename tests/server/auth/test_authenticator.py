"""The authenticator: malformed keys never touch storage, one verification per key, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from config import Settings
from models import ApiKey, KeyStatus, Tenant, TenantStatus
from server.auth.apikey import PresentedKey, generate_key, hash_key, parse_bearer
from server.auth.authenticator import Authenticator
from server.auth.keycache import KeyCache
from server.auth.principal import Principal
from server.auth.throttle import FAILURES_PER_SOURCE
from server.errors import Unauthorized
from server.stores.database import database


def _auth() -> Authenticator:
    return Authenticator(KeyCache(size=100, ttl=60, negative_ttl=60), verify_concurrency=2)


async def _key(tenant: Tenant, **fields: object) -> str:
    presented = generate_key()
    await ApiKey.create(
        tenant=tenant,
        name=presented.prefix,
        prefix=presented.prefix,
        key_hash=hash_key(presented),
        **fields,
    )
    return presented.full


@pytest.fixture
async def tenant(settings: Settings) -> AsyncIterator[Tenant]:
    async with database(settings):
        yield await Tenant.create(name="acme", rpm=60)


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic abc", "Bearer", "Bearer nz_short", "Bearer sk-123", "Bearer nz_" + "x" * 200],
)
async def test_malformed_keys_are_refused_without_storage(header: str | None) -> None:
    auth = _auth()  # no database is open: touching storage would raise something else
    with pytest.raises(Unauthorized):
        await auth.authenticate(header)
    assert auth.verifications == 0


async def test_one_verification_for_many_concurrent_requests(tenant: Tenant) -> None:
    key, auth = await _key(tenant), _auth()
    principals = await asyncio.gather(*(auth.authenticate(f"Bearer {key}") for _ in range(50)))
    assert {p.prefix for p in principals} == {key[:11]}
    assert principals[0].key_limits.rpm == 60  # inherited from the tenant
    assert auth.verifications == 1


async def test_wrong_secret_is_refused_and_cached_negatively(tenant: Tenant) -> None:
    key, auth = await _key(tenant), _auth()
    wrong = f"Bearer {key[:-1]}{'A' if key[-1] != 'A' else 'B'}"
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(wrong)
    assert auth.verifications == 1
    assert (await auth.authenticate(f"Bearer {key}")).prefix == key[:11]


async def test_revoked_disabled_and_expired_keys_and_disabled_tenants(tenant: Tenant) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    refused = [
        await _key(tenant, status=KeyStatus.REVOKED, revoked_at=past),
        await _key(tenant, status=KeyStatus.DISABLED),
        await _key(tenant, expires_at=past),
    ]
    off = await Tenant.create(name="off", status=TenantStatus.DISABLED)
    refused.append(await _key(off))
    auth = _auth()
    for key in refused:
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {key}")


async def test_a_cached_key_is_refused_once_it_expires(tenant: Tenant) -> None:
    now = [datetime.now(UTC).timestamp()]
    soon = datetime.now(UTC) + timedelta(seconds=60)
    auth = Authenticator(
        KeyCache(size=100, ttl=3600, negative_ttl=60), verify_concurrency=2, wall=lambda: now[0]
    )
    key = await _key(tenant, expires_at=soon)
    await auth.authenticate(f"Bearer {key}")
    now[0] += 61  # no sleeping: the authenticator reads the injected clock
    with pytest.raises(Unauthorized, match="expired"):
        await auth.authenticate(f"Bearer {key}")
    assert auth.verifications == 1  # still the cached principal: its expiry decided


async def test_cache_entries_expire_on_the_injected_clock(tenant: Tenant) -> None:
    clock = [0.0]
    cache = KeyCache(size=100, ttl=30, negative_ttl=5, clock=lambda: clock[0])
    auth = Authenticator(cache, verify_concurrency=2, clock=lambda: clock[0])
    key = await _key(tenant)
    await auth.authenticate(f"Bearer {key}")
    clock[0] = 29.0
    await auth.authenticate(f"Bearer {key}")
    assert auth.verifications == 1 and len(cache) == 1
    clock[0] = 31.0
    assert len(cache) == 0  # expired: the next request looks the key up again
    wrong = f"Bearer {key[:11]}{'0' * 40}"
    with pytest.raises(Unauthorized):
        await auth.authenticate(wrong)
    assert cache.is_rejected(_digest(wrong))
    clock[0] = 37.0
    assert not cache.is_rejected(_digest(wrong))


def _digest(header: str) -> str:
    presented = parse_bearer(header)
    assert presented is not None
    return presented.digest


async def test_a_known_key_gets_back_in_past_a_flood_without_argon2(tenant: Tenant) -> None:
    key, auth = await _key(tenant), _auth()
    await auth.authenticate(f"Bearer {key}")
    for i in range(FAILURES_PER_SOURCE + 5):  # a flood of wrong secrets for the same prefix
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {key[:11]}{i:040d}")
    assert auth.verifications == 1 + FAILURES_PER_SOURCE  # the rest were throttled unhashed
    auth.cache.clear()  # the good key's cache entry expires while the prefix is throttled
    assert (await auth.authenticate(f"Bearer {key}")).prefix == key[:11]
    assert auth.verifications == 1 + FAILURES_PER_SOURCE
    row = await ApiKey.get(prefix=key[:11])
    row.status = KeyStatus.REVOKED
    await row.save()
    auth.cache.clear()  # as an invalidation would
    with pytest.raises(Unauthorized):  # the database still decides the key's status
        await auth.authenticate(f"Bearer {key}")


async def test_a_flood_from_one_address_does_not_lock_out_the_owner(tenant: Tenant) -> None:
    key, auth = await _key(tenant), _auth()  # a fresh worker: the key was never proven here
    flood = [
        auth.authenticate(f"Bearer {key[:11]}{i:040d}", client="203.0.113.9") for i in range(600)
    ]
    owner = auth.authenticate(f"Bearer {key}", client="198.51.100.7")
    results = await asyncio.gather(owner, *flood, return_exceptions=True)
    assert isinstance(results[0], Principal) and results[0].prefix == key[:11]
    assert all(isinstance(r, Unauthorized) for r in results[1:])
    assert auth.verifications <= FAILURES_PER_SOURCE + 3  # the rest were refused unhashed
    with pytest.raises(Unauthorized):  # the flooding address stays throttled
        await auth.authenticate(f"Bearer {key[:11]}{'9' * 40}", client="203.0.113.9")
    assert auth.verifications <= FAILURES_PER_SOURCE + 3


async def test_x_api_key_and_bearer(tenant: Tenant) -> None:
    key, auth = await _key(tenant), _auth()
    assert (await auth.authenticate(None, api_key=key)).prefix == key[:11]
    assert (await auth.authenticate(f"Bearer {key}", api_key=key)).prefix == key[:11]
    other = await _key(tenant)
    with pytest.raises(Unauthorized, match="two different API keys"):
        await auth.authenticate(f"Bearer {key}", api_key=other)
    with pytest.raises(Unauthorized, match="invalid API key"):
        await auth.authenticate(None, api_key="sk-not-ours")


async def test_an_unknown_prefix_costs_one_lookup(tenant: Tenant) -> None:
    auth = _auth()
    for i in range(20):
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer nz_zzzzzzzz{i:040d}")
    assert auth.lookups == 1 and auth.verifications == 0


class _RevokedWhileVerifying(Authenticator):
    """Revokes the key (database and invalidation) while its first verification runs."""

    revoked = False

    async def _verify(self, stored: str, presented: PresentedKey, client: str) -> bool:
        ok = await super()._verify(stored, presented, client)
        if not self.revoked:
            self.revoked = True
            row = await ApiKey.get(prefix=presented.prefix)
            row.status = KeyStatus.REVOKED
            await row.save()
            self.cache.evict_key(row.id)  # the invalidation arrives mid-lookup
        return ok


async def test_an_invalidation_during_a_lookup_voids_it(tenant: Tenant) -> None:
    key = await _key(tenant)
    auth = _RevokedWhileVerifying(KeyCache(size=10, ttl=60, negative_ttl=60), verify_concurrency=1)
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {key}")
    assert len(auth.cache) == 0  # nothing was cached as valid
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {key}")


async def test_a_flood_from_many_addresses_does_not_lock_out_the_owner(tenant: Tenant) -> None:
    key, auth = await _key(tenant), _auth()  # a fresh worker: the key was never proven here
    sources = [f"203.0.113.{n}" for n in range(40)]  # 400 failures: past the prefix ceiling
    for n, source in enumerate(sources):
        for i in range(FAILURES_PER_SOURCE):
            with pytest.raises(Unauthorized):
                await auth.authenticate(f"Bearer {key[:11]}{n:020d}{i:020d}", client=source)
    spent = auth.verifications
    for source in sources:  # an address that failed is refused unhashed from now on
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {key}", client=source)
    assert auth.verifications == spent
    owner = await auth.authenticate(f"Bearer {key}", client="198.51.100.7")
    assert owner.prefix == key[:11]  # an address that never failed is heard
    assert (await auth.authenticate(f"Bearer {key}", client=sources[0])).prefix == key[:11]
