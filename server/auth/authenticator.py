"""Authentication on the hot path: Bearer parsing, the key cache, and bounded Argon2id checks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from cachetools import TTLCache
from loguru import logger
from tortoise.exceptions import BaseORMException

from models import ApiKey, KeyStatus, TenantStatus
from server.auth.apikey import PresentedKey, parse_bearer, verify_key
from server.auth.keycache import Clock, KeyCache
from server.auth.principal import Principal, build_principal
from server.errors import Unauthorized, Unavailable

INVALID = "invalid API key: provide a valid key as 'Authorization: Bearer nz_...'"
# After this many failed checks of one prefix in a window, further wrong secrets for it
# are refused without hashing; cached good keys are unaffected.
FAILURES_PER_PREFIX = 10
FAILURE_WINDOW = 60.0
KNOWN_TTL = 24 * 3600.0


class Authenticator:
    """Turns an Authorization header into a Principal, touching storage only on a cache miss."""

    def __init__(
        self,
        cache: KeyCache,
        *,
        verify_concurrency: int,
        cache_size: int = 10_000,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.cache = cache
        self._clock, self._wall = clock, wall
        self._verify_slots = asyncio.Semaphore(verify_concurrency)
        self._inflight: dict[str, asyncio.Future[Principal | None]] = {}
        self._failures: dict[str, tuple[float, int]] = {}
        # prefix -> (SHA-256 of the key last verified, the hash it matched): lets a good key
        # back in without Argon2id, and past the failure throttle, once its cache entry expired.
        # Status is still read from the database, so revocation applies.
        self._known: TTLCache[str, tuple[str, str]] = TTLCache(
            maxsize=cache_size, ttl=KNOWN_TTL, timer=clock
        )
        self.verifications = 0

    async def authenticate(self, header: str | None) -> Principal:
        """The caller's principal; raises Unauthorized (401) or Unavailable (503)."""
        presented = parse_bearer(header)
        if presented is None:
            raise Unauthorized(
                INVALID if header else "missing API key: send 'Authorization: Bearer nz_...'"
            )
        digest = presented.digest
        principal = self.cache.get(digest)
        if principal is None:
            if self.cache.is_rejected(digest):
                raise Unauthorized(INVALID)
            principal = await self._load_once(digest, presented)
            if principal is None:
                raise Unauthorized(INVALID)
        if principal.expired(self._wall()):
            raise Unauthorized("API key expired")
        return principal

    async def _load_once(self, digest: str, presented: PresentedKey) -> Principal | None:
        """Verify a key at most once at a time per worker, however many requests bring it."""
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            result = await self._load(presented)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(result)
        finally:
            del self._inflight[digest]
        if result is None:
            self.cache.reject(digest)
        else:
            self.cache.put(digest, result)
        return result

    async def _load(self, presented: PresentedKey) -> Principal | None:
        digest = presented.digest
        known = self._known.get(presented.prefix)
        trusted = known is not None and known[0] == digest
        if not trusted and self._throttled(presented.prefix):
            return None
        try:
            row = await ApiKey.filter(prefix=presented.prefix).select_related("tenant").first()
        except (BaseORMException, OSError) as exc:
            logger.warning("key lookup failed: {}", type(exc).__name__)
            raise Unavailable(
                "the key store is unreachable; try again shortly", headers={"Retry-After": "2"}
            ) from exc
        if row is None:
            return None
        if not (trusted and known is not None and known[1] == row.key_hash):
            async with self._verify_slots:
                if self._throttled(presented.prefix):  # failures piled up while we waited
                    return None
                self.verifications += 1
                ok = await asyncio.to_thread(verify_key, row.key_hash, presented)
            logger.info("key verification prefix={} ok={}", presented.prefix, ok)
            if not ok:
                self._note_failure(presented.prefix)
                return None
            self._known[presented.prefix] = (digest, row.key_hash)
        if row.status != KeyStatus.ACTIVE or row.tenant.status != TenantStatus.ACTIVE:
            return None
        await _touch(row)
        return build_principal(row, row.tenant)

    def _throttled(self, prefix: str) -> bool:
        start, count = self._failures.get(prefix, (0.0, 0))
        if self._clock() - start > FAILURE_WINDOW:
            self._failures.pop(prefix, None)
            return False
        return count >= FAILURES_PER_PREFIX

    def _note_failure(self, prefix: str) -> None:
        now = self._clock()
        start, count = self._failures.get(prefix, (now, 0))
        if now - start > FAILURE_WINDOW:
            start, count = now, 0
        self._failures[prefix] = (start, count + 1)
        if len(self._failures) > 10_000:
            self._failures.clear()


async def _touch(row: ApiKey) -> None:
    """Record last use, once per cache fill (not per request); never fails the request."""
    try:
        await ApiKey.filter(id=row.id).update(last_used_at=datetime.now(UTC))
    except (BaseORMException, OSError):
        logger.warning("could not record last use of key {}", row.prefix)
