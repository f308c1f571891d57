"""Authentication on the hot path: the key from the headers, the key cache, bounded Argon2id."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from enum import Enum

from cachetools import TTLCache
from loguru import logger
from tortoise.exceptions import BaseORMException

from models import ApiKey, KeyStatus, TenantStatus
from server.auth.apikey import PresentedKey, parse_bearer, parse_key, verify_key
from server.auth.keycache import Clock, KeyCache
from server.auth.principal import Principal, build_principal
from server.auth.throttle import FailureThrottle
from server.errors import Unauthorized, Unavailable
from server.observe.metrics import Metrics

INVALID = "invalid API key: provide a valid key as 'Authorization: Bearer nz_...'"
MISSING = "missing API key: send 'Authorization: Bearer nz_...' (or 'x-api-key: nz_...')"
CONFLICT = "two different API keys were sent (Authorization and x-api-key); send one"
KNOWN_TTL = 24 * 3600.0
LOOKUP_ATTEMPTS = 3  # a lookup voided by an invalidation is retried this often


def presented_key(authorization: str | None, api_key: str | None) -> PresentedKey:
    """The key a request carries as a Bearer token or in x-api-key; 401 when none or two."""
    bearer = parse_bearer(authorization) if authorization else None
    header = parse_key(api_key.strip()) if api_key else None
    if (authorization and bearer is None) or (api_key and header is None):
        raise Unauthorized(INVALID)
    if bearer is not None and header is not None and bearer != header:
        raise Unauthorized(CONFLICT)
    key = bearer or header
    if key is None:
        raise Unauthorized(MISSING)
    return key


class Authenticator:
    """Turns a request's key into a Principal, touching storage only on a cache miss.

    A key's digest is verified at most once at a time per worker however many requests bring
    it; Argon2id runs in a thread, at most `verify_concurrency` at once; failures are throttled
    per prefix and client address (server.auth.throttle); a prefix that does not exist is
    remembered for the negative TTL; a lookup during which an invalidation arrived is voided.
    """

    def __init__(
        self,
        cache: KeyCache,
        *,
        verify_concurrency: int,
        cache_size: int = 10_000,
        negative_ttl: float = 5.0,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.cache = cache
        self._metrics = metrics or Metrics()
        self._wall = wall
        self._verify_slots = asyncio.Semaphore(verify_concurrency)
        self._inflight: dict[str, asyncio.Future[Principal | None]] = {}
        self.throttle = FailureThrottle(clock)
        # prefix -> (SHA-256 of the key last verified, the hash it matched): lets a good key
        # back in without Argon2id, past any throttle, once its cache entry expired. Its status
        # is still read from the database, so revocation applies.
        self._known: TTLCache[str, tuple[str, str]] = TTLCache(
            maxsize=cache_size, ttl=KNOWN_TTL, timer=clock
        )
        self._unknown: TTLCache[str, bool] = TTLCache(
            maxsize=cache_size, ttl=negative_ttl, timer=clock
        )
        self.verifications = 0
        self.lookups = 0

    async def authenticate(
        self, authorization: str | None, *, api_key: str | None = None, client: str | None = None
    ) -> Principal:
        """The caller's principal; raises Unauthorized (401) or Unavailable (503)."""
        presented = presented_key(authorization, api_key)
        digest = presented.digest
        principal = self.cache.get(digest)
        self._metrics.key_cache.labels("miss" if principal is None else "hit").inc()
        if principal is None:
            if self.cache.is_rejected(digest):
                raise Unauthorized(INVALID)
            principal = await self._load_once(digest, presented, client or "-")
            if principal is None:
                raise Unauthorized(INVALID)
        if principal.expired(self._wall()):
            raise Unauthorized("API key expired")
        return principal

    async def _load_once(
        self, digest: str, presented: PresentedKey, client: str
    ) -> Principal | None:
        """Verify a key at most once at a time per worker, however many requests bring it."""
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            result = await self._load_current(presented, client)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(result)
        finally:
            del self._inflight[digest]
        return result

    async def _load_current(self, presented: PresentedKey, client: str) -> Principal | None:
        """Look the key up; if an invalidation arrived meanwhile, look again (then cache)."""
        for _ in range(LOOKUP_ATTEMPTS):
            generation = self.cache.generation
            result = await self._load(presented, client)
            if result is _THROTTLED:
                return None  # refused unhashed: says nothing about the key, so not cached
            if self.cache.generation == generation:
                if result is None:
                    self.cache.reject(presented.digest)
                else:
                    self.cache.put(presented.digest, result)
                return result
        return None  # invalidated again and again: refuse now, cache nothing

    async def _load(self, presented: PresentedKey, client: str) -> Principal | None | _Throttled:
        prefix, digest = presented.prefix, presented.digest
        known = self._known.get(prefix)
        trusted = known is not None and known[0] == digest
        if not trusted and prefix in self._unknown:
            return None
        if not trusted and self.throttle.blocked(prefix, client):
            return _THROTTLED
        row = await self._row(prefix)
        if row is None:
            self._unknown[prefix] = True
            return None
        if not (trusted and known is not None and known[1] == row.key_hash):
            verified = await self._verify(row.key_hash, presented, client)
            if verified is _THROTTLED:
                return _THROTTLED
            if not verified:
                return None
            self._known[prefix] = (digest, row.key_hash)
        if row.status != KeyStatus.ACTIVE or row.tenant.status != TenantStatus.ACTIVE:
            return None
        await _touch(row)
        return build_principal(row, row.tenant)

    async def _row(self, prefix: str) -> ApiKey | None:
        self.lookups += 1
        try:
            return await ApiKey.filter(prefix=prefix).select_related("tenant").first()
        except (BaseORMException, OSError) as exc:
            logger.warning("key lookup failed: {}", type(exc).__name__)
            raise Unavailable(
                "the key store is unreachable; try again shortly", headers={"Retry-After": "2"}
            ) from exc

    async def _verify(self, stored: str, presented: PresentedKey, client: str) -> bool | _Throttled:
        """Argon2id in a thread, bounded; a failure counts against the prefix and address."""
        async with self._verify_slots:
            if self.throttle.blocked(presented.prefix, client):  # failures piled up meanwhile
                return _THROTTLED
            self.verifications += 1
            ok = await asyncio.to_thread(verify_key, stored, presented)
        logger.info("key verification prefix={} ok={}", presented.prefix, ok)
        self._metrics.verifications.labels("ok" if ok else "failed").inc()
        if not ok:
            self.throttle.failed(presented.prefix, client)
        return ok


class _Throttled(Enum):
    """A secret refused without hashing (its address failed too often): not a verdict."""

    THROTTLED = "throttled"


_THROTTLED = _Throttled.THROTTLED


async def _touch(row: ApiKey) -> None:
    """Record last use, once per cache fill (not per request); never fails the request."""
    try:
        await ApiKey.filter(id=row.id).update(last_used_at=datetime.now(UTC))
    except (BaseORMException, OSError):
        logger.warning("could not record last use of key {}", row.prefix)
