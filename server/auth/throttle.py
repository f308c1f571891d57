"""Failed-key throttles: per key prefix and client address, with a ceiling per prefix overall.

A wrong secret costs an Argon2id verification. After FAILURES_PER_SOURCE failures for one
prefix from one address within the window, that address's further secrets for the prefix are
refused without hashing; once FAILURES_PER_PREFIX failures came from all addresses together,
an address is refused after its first failure. An address that has not failed for the prefix
is always heard, so a flood from many places cannot lock the owner out; the Argon2id work
itself is bounded by the worker's verification slots (KEY_VERIFY_CONCURRENCY), and a key
already proven on this worker is never throttled (see Authenticator).
"""

from __future__ import annotations

from cachetools import TTLCache

from server.auth.keycache import Clock

FAILURES_PER_SOURCE = 10
FAILURES_PER_PREFIX = 200
FAILURE_WINDOW = 60.0
MAX_TRACKED = 50_000


class FailureThrottle:
    """Counts recent failures by (prefix, address) and by prefix; bounded in memory."""

    def __init__(self, clock: Clock) -> None:
        self._by_source: TTLCache[tuple[str, str], int] = TTLCache(
            maxsize=MAX_TRACKED, ttl=FAILURE_WINDOW, timer=clock
        )
        self._by_prefix: TTLCache[str, int] = TTLCache(
            maxsize=MAX_TRACKED, ttl=FAILURE_WINDOW, timer=clock
        )

    def blocked(self, prefix: str, source: str) -> bool:
        """Whether a new, unproven secret for `prefix` from `source` is refused unhashed."""
        failures = self._by_source.get((prefix, source), 0)
        if failures >= FAILURES_PER_SOURCE:
            return True
        return failures > 0 and self._by_prefix.get(prefix, 0) >= FAILURES_PER_PREFIX

    def failed(self, prefix: str, source: str) -> None:
        """Note one failed verification; each failure extends its counters' window."""
        self._by_source[(prefix, source)] = self._by_source.get((prefix, source), 0) + 1
        self._by_prefix[prefix] = self._by_prefix.get(prefix, 0) + 1
