"""The per-worker cache of verified keys (TTL-LRU), with negative entries and targeted eviction."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from cachetools import TTLCache

from server.auth.principal import Principal

Clock = Callable[[], float]


class KeyCache:
    """Maps SHA-256 digests of presented keys to principals; evicts by key or tenant id.

    `clock` (monotonic seconds) decides expiry, so tests can move time instead of sleeping.
    Every eviction bumps `generation`: a lookup that started before it must not cache its result.
    """

    def __init__(
        self, *, size: int, ttl: float, negative_ttl: float, clock: Clock = time.monotonic
    ) -> None:
        self._positive: TTLCache[str, Principal] = TTLCache(maxsize=size, ttl=ttl, timer=clock)
        self._negative: TTLCache[str, bool] = TTLCache(maxsize=size, ttl=negative_ttl, timer=clock)
        self._by_key: defaultdict[int, set[str]] = defaultdict(set)
        self._by_tenant: defaultdict[int, set[str]] = defaultdict(set)
        self.generation = 0

    def get(self, digest: str) -> Principal | None:
        """The cached principal, or None."""
        return self._positive.get(digest)

    def is_rejected(self, digest: str) -> bool:
        """Whether this exact key failed recently."""
        return digest in self._negative

    def put(self, digest: str, principal: Principal) -> None:
        """Remember a verified key."""
        self._positive[digest] = principal
        self._by_key[principal.key_id].add(digest)
        self._by_tenant[principal.tenant_id].add(digest)

    def reject(self, digest: str) -> None:
        """Remember a failed key for the negative TTL."""
        self._negative[digest] = True

    def evict_key(self, key_id: int) -> None:
        """Drop every entry of one key."""
        self.generation += 1
        for digest in self._by_key.pop(key_id, set()):
            self._positive.pop(digest, None)

    def evict_tenant(self, tenant_id: int) -> None:
        """Drop every entry of every key of one tenant."""
        self.generation += 1
        for digest in self._by_tenant.pop(tenant_id, set()):
            self._positive.pop(digest, None)

    def clear(self) -> None:
        """Drop everything (an invalidation may have been missed)."""
        self.generation += 1
        self._positive.clear()
        self._negative.clear()
        self._by_key.clear()
        self._by_tenant.clear()

    def __len__(self) -> int:
        return len(self._positive)
