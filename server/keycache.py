"""The per-worker cache of verified keys (TTL-LRU), with negative entries and targeted eviction."""

from __future__ import annotations

from collections import defaultdict

from cachetools import TTLCache

from server.principal import Principal


class KeyCache:
    """Maps SHA-256 digests of presented keys to principals; evicts by key or tenant id."""

    def __init__(self, *, size: int, ttl: float, negative_ttl: float) -> None:
        self._positive: TTLCache[str, Principal] = TTLCache(maxsize=size, ttl=ttl)
        self._negative: TTLCache[str, bool] = TTLCache(maxsize=size, ttl=negative_ttl)
        self._by_key: defaultdict[int, set[str]] = defaultdict(set)
        self._by_tenant: defaultdict[int, set[str]] = defaultdict(set)

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
        for digest in self._by_key.pop(key_id, set()):
            self._positive.pop(digest, None)

    def evict_tenant(self, tenant_id: int) -> None:
        """Drop every entry of every key of one tenant."""
        for digest in self._by_tenant.pop(tenant_id, set()):
            self._positive.pop(digest, None)

    def clear(self) -> None:
        """Drop everything (an invalidation may have been missed)."""
        self._positive.clear()
        self._negative.clear()
        self._by_key.clear()
        self._by_tenant.clear()

    def __len__(self) -> int:
        return len(self._positive)
