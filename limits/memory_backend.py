"""The in-process backend: the Lua scripts' semantics in Python, for one process (embedded mode)."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from limits.verdict import ADMITTED, DENIED, NEEDS_SEED, limit_args, to_admission
from limits.policy import Admission, Ask, Subject, Ticket, Usage
from limits.windows import window_ids

UTC = ZoneInfo("UTC")
WINDOW_MS = 60_000
_DENY_ORDER = (6, 5, 4, 1, 2, 3)  # total, monthly, daily, requests, tokens, concurrency


@dataclass(slots=True)
class _Scope:
    """The state of one scope; mirrors the Redis keys listed in limits/keyspace.py."""

    rpm: list[tuple[int, str]] = field(default_factory=list)  # (ms, request_id), sorted
    tpm: dict[int, int] = field(default_factory=dict)  # second -> tokens
    leases: dict[str, int] = field(default_factory=dict)  # request_id -> expiry ms
    resv: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (tokens, expiry ms)
    counters: dict[str, int] = field(default_factory=dict)  # d:<day>, m:<month>, total
    done: dict[str, int] = field(default_factory=dict)  # settled id -> expiry ms (key scope)
    seeded: bool = False

    def purge(self, now: int) -> None:
        self.resv = {k: v for k, v in self.resv.items() if v[1] > now}

    def charge(self, used: int, day: str, month: str) -> None:
        for name in (f"d:{day}", f"m:{month}", "total"):
            self.counters[name] = self.counters.get(name, 0) + used
        # drop windows older than the ones charged: they can never be current again
        current = {"d": f"d:{day}", "m": f"m:{month}"}
        for name in [n for n in self.counters if n != "total" and n < current[n[0]]]:
            del self.counters[name]

    def held(self) -> int:
        """Tokens reserved by requests still in flight."""
        return sum(tokens for tokens, _ in self.resv.values())

    def budget_used(self, day: str, month: str) -> tuple[int, int, int]:
        live = self.held()
        c = self.counters
        return live + c.get(f"d:{day}", 0), live + c.get(f"m:{month}", 0), live + c.get("total", 0)


class MemoryLimits:
    """Limits held in this process; the same semantics as RedisLimits, clock from time.time().

    No method awaits anything, so each call is atomic on the event loop. State per scope is
    kept for the life of the process (a few small dicts per tenant and key).
    """

    def __init__(
        self,
        *,
        tz: ZoneInfo = UTC,
        lease_ttl: float = 900.0,
        default_output_reserve: int | None = None,
    ) -> None:
        self._tz = tz
        self._ttl = int(lease_ttl * 1000)
        self._default_reserve = -1 if default_output_reserve is None else default_output_reserve
        self._scopes: dict[tuple[str, ...], _Scope] = {}

    def _pair(self, tenant_id: str, key_id: str) -> tuple[_Scope, _Scope]:
        key = self._scopes.setdefault(("k", tenant_id, key_id), _Scope())
        return key, self._scopes.setdefault(("t", tenant_id), _Scope())

    def _windows(self, now: float | None) -> tuple[float, int, str, str]:
        t = time.time() if now is None else now
        day, month = window_ids(t, self._tz)
        return t, int(t * 1000), day, month

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        """Check every limit at both scopes and, if all pass, reserve atomically."""
        t, now_ms, day, month = self._windows(now)
        raw = self._verdict(subject, ask, now_ms, day, month)
        return to_admission(raw, subject, ask, day=day, month=month, now=t, tz=self._tz)

    def _verdict(self, subject: Subject, ask: Ask, now: int, day: str, month: str) -> list[int]:
        scopes = self._pair(subject.tenant_id, subject.key_id)
        lim = (limit_args(subject.key), limit_args(subject.tenant))
        sec = now // 1000
        prompt = ask.prompt_tokens
        max_output = -1 if ask.max_output is None else ask.max_output
        for s in (0, 1):
            if max(lim[s][3:]) >= 0 and not scopes[s].seeded:
                return [NEEDS_SEED, -1, -1, -1, -1, -1, now, -1, -1, -1, -1, -1, -1]

        used: list[list[int]] = []
        buckets: list[list[tuple[int, int]]] = []
        for s, st in enumerate(scopes):
            u = [0] * 6
            st.purge(now)
            st.rpm = st.rpm[bisect.bisect_right(st.rpm, (now - WINDOW_MS, "\U0010ffff")) :]
            u[0] = len(st.rpm)
            st.tpm = {b: v for b, v in st.tpm.items() if b > sec - 60}
            u[1] = sum(st.tpm.values())
            buckets.append(sorted(st.tpm.items()))
            st.leases = {k: v for k, v in st.leases.items() if v > now}
            u[2] = len(st.leases)
            u[3], u[4], u[5] = st.budget_used(day, month)
            used.append(u)

        def tpm_wait(s: int, need: int) -> int:
            freed = 0
            for b, v in buckets[s]:
                freed += v
                if freed >= need:
                    return (b + 60) * 1000 - now
            return WINDOW_MS

        allowance: int | None = None
        deny_s = deny_i = retry = -1
        for i in _DENY_ORDER:
            for s in (0, 1):
                limit = lim[s][i - 1]
                if deny_s >= 0 or limit < 0:
                    continue
                if i == 1:
                    if used[s][0] >= limit:
                        deny_s, deny_i, retry = s, i, WINDOW_MS
                        nth = used[s][0] - limit
                        if nth < len(scopes[s].rpm):
                            retry = scopes[s].rpm[nth][0] + WINDOW_MS - now
                elif i == 3:
                    if used[s][2] >= limit:
                        deny_s, deny_i, retry = s, i, 1000
                else:
                    avail = limit - used[s][i - 1] - prompt
                    if avail <= 0:
                        deny_s, deny_i = s, i
                        if i == 2:
                            retry = tpm_wait(s, 1 - avail)
                        elif avail + scopes[s].held() > 0:
                            retry = 1000  # not spent: held by requests in flight
                    elif allowance is None or avail < allowance:
                        allowance = avail

        admitted = deny_s < 0
        cap, reserved = -1, prompt + max(max_output, 0)
        if admitted and allowance is not None:
            want = allowance
            if max_output >= 0:
                want = max_output
            elif self._default_reserve >= 0:
                want = self._default_reserve
            cap = min(allowance, want)
            reserved = prompt + cap

        rl = rr = rreset = tl = tr = treset = -1
        for s, st in enumerate(scopes):
            if lim[s][0] >= 0:
                rem = max(lim[s][0] - used[s][0] - (1 if admitted else 0), 0)
                if rr < 0 or rem < rr:
                    rl, rr = lim[s][0], rem
                    rreset = st.rpm[0][0] + WINDOW_MS - now if st.rpm else WINDOW_MS
            if lim[s][1] >= 0:
                rem = max(lim[s][1] - used[s][1] - (reserved if admitted else 0), 0)
                if tr < 0 or rem < tr:
                    tl, tr = lim[s][1], rem
                    first = buckets[s][0][0] if buckets[s] else sec
                    treset = (first + 60) * 1000 - now
        rate = [rl, rr, rreset, tl, tr, treset]
        if not admitted:
            return [DENIED, deny_s + 1, deny_i, retry, -1, -1, now, *rate]

        for s, st in enumerate(scopes):
            if lim[s][0] >= 0:
                bisect.insort(st.rpm, (now, ask.request_id))
            if lim[s][1] >= 0:
                st.tpm[sec] = st.tpm.get(sec, 0) + reserved
            if lim[s][2] >= 0:
                st.leases[ask.request_id] = now + self._ttl
            st.resv[ask.request_id] = (reserved, now + self._ttl)
        return [ADMITTED, -1, -1, -1, cap, reserved, now, *rate]

    async def settle(self, ticket: Ticket, used_tokens: int, *, now: float | None = None) -> None:
        """Release the leases and reservation and charge ``used_tokens``; a repeat is a no-op."""
        if used_tokens < 0:
            raise ValueError("used_tokens must be >= 0")
        now_ms = int((time.time() if now is None else now) * 1000)
        scopes = self._pair(ticket.tenant_id, ticket.key_id)
        done = scopes[0].done
        # insertion order is expiry order while the clock runs forward
        while done and next(iter(done.values())) <= now_ms:
            del done[next(iter(done))]
        if ticket.request_id in done:
            return
        bucket = ticket.at_ms // 1000
        delta = used_tokens - ticket.reserved
        for st, tpm in zip(scopes, (ticket.tpm_key, ticket.tpm_tenant), strict=True):
            st.leases.pop(ticket.request_id, None)
            st.resv.pop(ticket.request_id, None)
            if used_tokens > 0:
                st.charge(used_tokens, ticket.day, ticket.month)
            if tpm and delta and bucket > now_ms // 1000 - 60 and bucket in st.tpm:
                st.tpm[bucket] += delta
        done[ticket.request_id] = now_ms + self._ttl

    async def seed(
        self, subject: Subject, tenant_usage: Usage, key_usage: Usage, *, now: float | None = None
    ) -> None:
        """Set unseeded counters to max(existing, given) and mark both scopes seeded."""
        _, _, day, month = self._windows(now)
        for st, given in zip(
            self._pair(subject.tenant_id, subject.key_id), (key_usage, tenant_usage), strict=True
        ):
            if st.seeded:
                continue
            for name, value in (
                (f"d:{day}", given.day),
                (f"m:{month}", given.month),
                ("total", given.total),
            ):
                st.counters[name] = max(st.counters.get(name, 0), value)
            st.seeded = True

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        """(tenant, key) usage: settled plus live reservations, in the current windows."""
        _, now_ms, day, month = self._windows(now)
        key, tenant = self._pair(subject.tenant_id, subject.key_id)
        for st in (key, tenant):
            st.purge(now_ms)
        return Usage(*tenant.budget_used(day, month)), Usage(*key.budget_used(day, month))

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Drop all state."""
        self._scopes.clear()
