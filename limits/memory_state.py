"""The state of one scope in MemoryLimits: lua/common.lua's structures and helpers in Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_MS = 60_000
_NEVER = 2**62


@dataclass(slots=True)
class Window:
    """A rolling minute of per-second buckets (the ``win`` hash): roll, add, wait, reset.

    Buckets hold positive values only, so all of them lie in [lo, lo + 59].
    """

    buckets: dict[int, int] = field(default_factory=dict)
    sum: int = 0
    lo: int | None = None  # the oldest second that may be non-zero
    cur: int = -1  # the current second: what roll() was last moved to

    def roll(self, sec: int) -> int:
        """Expire the buckets that left the minute; the bucket a write at ``sec`` goes to."""
        if self.lo is None:
            self.lo, self.sum, self.cur = sec, 0, sec
            return sec
        if sec <= self.cur:  # the same second, or the clock went back: count in cur
            return self.cur
        self.cur = sec
        if self.lo > sec - 60:
            return sec
        if self.lo + 59 <= sec - 60:
            self.buckets.clear()
            self.sum, self.lo = 0, sec
            return sec
        expired, first = 0, None
        for t in range(self.lo, sec):
            if t <= sec - 60:
                expired += self.buckets.pop(t, 0)
            elif first is None and self.buckets.get(t, 0) > 0:
                first = t
        self.sum -= expired
        self.lo = sec if first is None else first
        return sec

    def add(self, bucket: int, n: int) -> None:
        """Count ``n`` more in ``bucket`` (the one roll() returned)."""
        if n <= 0:
            return
        if self.sum <= 0:
            self.lo = bucket
        self.sum += n
        self.buckets[bucket] = self.buckets.get(bucket, 0) + n

    def wait(self, need: int, bucket: int, now: int) -> int:
        """ms from ``now`` until ``need`` units have left the minute (60 s if they never do)."""
        assert self.lo is not None
        freed = 0
        for t in range(self.lo, bucket + 1):
            freed += self.buckets.get(t, 0)
            if freed >= need:
                return (t + 60) * 1000 - now
        return WINDOW_MS

    def reset(self, now: int, empty: int) -> int:
        """ms until the oldest bucket leaves the minute, ``empty`` if nothing is in it."""
        if self.sum > 0 and self.lo is not None:
            return (self.lo + 60) * 1000 - now
        return empty

    def refund(self, tokens: int, parts: list[tuple[int, int]], sec: int) -> None:
        """Take up to ``tokens`` out of the (bucket, at most) ``parts`` still in the minute."""
        if self.lo is None:
            return
        left = tokens
        have = {b: self.buckets.get(b, 0) for b, _ in parts}
        changed: set[int] = set()
        for b, n in parts:
            if b >= self.lo and b > sec - 60 and have[b] > 0:
                g = min(left, n, have[b])
                have[b] -= g
                left -= g
                self.sum -= g
                changed.add(b)
        for b in changed:
            if have[b] == 0:
                self.buckets.pop(b, None)
            else:
                self.buckets[b] = have[b]
        self.sum = max(self.sum, 0)


def merge(
    cur: str | None, cur_v: int, window: str, v: int, f: Callable[[int, int], int]
) -> tuple[str, int]:
    """(window id, value) of a day or month counter after merging ``v`` into ``window``."""
    if cur == window:
        return window, f(cur_v, v)
    if cur is None or window > cur:
        return window, v
    return cur, cur_v


@dataclass(slots=True)
class Scope:
    """The fields of one scope in the tenant's ``st`` hash."""

    seeded: bool = False
    day: str | None = None
    day_v: int = 0
    month: str | None = None
    month_v: int = 0
    total: int = 0
    held: int = 0  # tokens reserved in flight
    n: int = 0  # requests open in flight
    rpm: Window = field(default_factory=Window)
    tpm: Window = field(default_factory=Window)

    def settled(self, day: str, month: str) -> tuple[int, int, int]:
        """Settled tokens of the day, the month and ever."""
        return (
            self.day_v if self.day == day else 0,
            self.month_v if self.month == month else 0,
            self.total,
        )

    def charge(self, used: int, day: str, month: str) -> None:
        """Add ``used`` to the day's, the month's and the total counter."""
        self.day, self.day_v = merge(self.day, self.day_v, day, used, int.__add__)
        self.month, self.month_v = merge(self.month, self.month_v, month, used, int.__add__)
        self.total += used


@dataclass(slots=True)
class Entry:
    """An open reservation, which is also the request's lease at both scopes."""

    tokens: int
    expiry: int  # ms
    key_id: str


@dataclass(slots=True)
class Tenant:
    """A tenant's state: its scope, its keys' scopes, and the ``open`` hash."""

    scope: Scope = field(default_factory=Scope)
    keys: dict[str, Scope] = field(default_factory=dict)
    open: dict[str, Entry] = field(default_factory=dict)  # request id -> reservation
    lapsed: dict[str, int] = field(default_factory=dict)  # request id -> tombstone expiry
    nx: int | None = None  # at or before the earliest expiry in open and lapsed

    def key(self, key_id: str) -> Scope:
        """The scope of one key of this tenant."""
        return self.keys.setdefault(key_id, Scope())

    def purge(self, now: int, grace: int) -> None:
        """Once now >= nx: release what lapsed, keep tombstones, drop old ones, renew nx."""
        if self.nx is None or now < self.nx:
            return
        gone = [(rid, e) for rid, e in self.open.items() if e.expiry <= now]
        self.lapsed = {rid: t for rid, t in self.lapsed.items() if t > now}
        expiries = [e.expiry for e in self.open.values() if e.expiry > now]
        expiries += self.lapsed.values()
        if gone:
            expiries.append(now + grace)
            tokens: dict[str, list[int]] = {}
            for rid, e in gone:
                del self.open[rid]
                self.lapsed[rid] = now + grace
                t = tokens.setdefault(e.key_id, [0, 0])
                t[0], t[1] = t[0] + e.tokens, t[1] + 1
            for scope, (tok, n) in [
                (self.scope, [sum(t[0] for t in tokens.values()), len(gone)]),
                *((self.key(k), t) for k, t in tokens.items()),
            ]:
                scope.held, scope.n = max(scope.held - tok, 0), max(scope.n - n, 0)
        self.nx = min(expiries, default=None)

    def expired(self, now: int, key_id: str) -> tuple[int, int]:
        """Tokens of (the key's, all) open reservations past their expiry, not purged yet."""
        if self.nx is None or now < self.nx:
            return 0, 0
        late = [e for e in self.open.values() if e.expiry <= now]
        return sum(e.tokens for e in late if e.key_id == key_id), sum(e.tokens for e in late)
