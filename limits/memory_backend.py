"""The in-process backend: the Lua scripts' semantics in Python, for one process (embedded mode)."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from limits.events import EventQueue
from limits.memory_admit import admit_verdict
from limits.memory_state import Scope, Tenant, merge
from limits.policy import Admission, Ask, Extension, Subject, Ticket, Usage
from limits.protocol import NON_STREAM_OUTPUT_CAP, OUTPUT_RESERVE_STEP
from limits.settings import Tuning
from limits.verdict import (
    DENIED,
    NO_RATE,
    settle_args,
    to_admission,
    to_extension,
    token_limit_args,
    wanted,
)
from limits.windows import window_ids

UTC = ZoneInfo("UTC")


class MemoryLimits:
    """Limits held in this process; the same semantics as RedisLimits, clock from time.time().

    No method awaits anything, so each call is atomic on the event loop. ``events`` is the
    audit queue settle() and record() append to.
    """

    def __init__(
        self,
        *,
        tz: ZoneInfo = UTC,
        lease_ttl: float = 900.0,
        output_step: int = OUTPUT_RESERVE_STEP,
        non_stream_cap: int = NON_STREAM_OUTPUT_CAP,
        events_max_bytes: int | None = None,
    ) -> None:
        self._tune = Tuning(lease_ttl, output_step, non_stream_cap, events_max_bytes)
        self._tz = tz
        self._tenants: dict[str, Tenant] = {}
        self.events = EventQueue(events_max_bytes)

    def _pair(self, tenant_id: str, key_id: str) -> tuple[Tenant, tuple[Scope, Scope]]:
        tenant = self._tenants.setdefault(tenant_id, Tenant())
        return tenant, (tenant.key(key_id), tenant.scope)

    def _windows(self, now: float | None) -> tuple[float, int, str, str]:
        t = time.time() if now is None else now
        day, month = window_ids(t, self._tz)
        return t, int(t * 1000), day, month

    async def admit(self, subject: Subject, ask: Ask, *, now: float | None = None) -> Admission:
        """Check every limit at both scopes and, if all pass, reserve atomically."""
        t, now_ms, day, month = self._windows(now)
        if self.events.over_bound:
            raw = [DENIED, -1, 7, 1000, -1, -1, now_ms, 0, *NO_RATE]
        else:
            tenant, scopes = self._pair(subject.tenant_id, subject.key_id)
            raw = admit_verdict(
                tenant, scopes, subject, ask, self._tune, now=now_ms, day=day, month=month
            )
        return to_admission(raw, subject, ask, day=day, month=month, now=t, tz=self._tz)

    async def extend(
        self, ticket: Ticket, tokens: int | None = None, *, now: float | None = None
    ) -> Extension:
        """Reserve up to ``tokens`` (default: one output step) more output for a request."""
        want = wanted(ticket, tokens, self._tune.output_step)
        if want == 0:
            return Extension(granted=0, ticket=ticket)
        _, now_ms, day, month = self._windows(now)
        return to_extension(ticket, want, self._extend(ticket, want, now_ms, day, month))

    def _extend(self, ticket: Ticket, want: int, now: int, day: str, month: str) -> list[int]:
        tenant, scopes = self._pair(ticket.tenant_id, ticket.key_id)
        entry = tenant.open.get(ticket.request_id)
        if entry is None or entry.expiry <= now:
            return [-1, now, -1, -1]
        lim = (token_limit_args(ticket.subject.key), token_limit_args(ticket.subject.tenant))
        sec = now // 1000
        grant, by_s, by_i = want, -1, -1
        tpm_bucket: dict[int, int] = {}
        for i in (6, 5, 4, 2):
            for s, st in enumerate(scopes):
                limit = lim[s][0 if i == 2 else i - 3]
                if limit < 0:
                    continue
                if i == 2:
                    tpm_bucket[s] = st.tpm.roll(sec)
                    used = st.tpm.sum
                else:
                    used = st.held + st.settled(day, month)[i - 4]
                if limit - used < grant:
                    grant, by_s, by_i = limit - used, s + 1, i
        grant = max(grant, 0)
        if grant > 0:
            entry.tokens += grant
            entry.expiry = now + self._tune.ttl_ms
            for s, st in enumerate(scopes):
                st.held += grant
                if s in tpm_bucket:
                    st.tpm.add(tpm_bucket[s], grant)
        return [grant, now, by_s, by_i]

    async def refresh(self, ticket: Ticket, *, now: float | None = None) -> bool:
        """Heartbeat: keep the lease and reservation open another lease_ttl; False if lapsed."""
        _, now_ms, _, _ = self._windows(now)
        tenant, _ = self._pair(ticket.tenant_id, ticket.key_id)
        entry = tenant.open.get(ticket.request_id)
        if entry is None or entry.expiry <= now_ms:
            return False
        entry.expiry = now_ms + self._tune.ttl_ms
        return True

    async def settle(
        self,
        ticket: Ticket,
        used_tokens: int,
        *,
        event: bytes | None = None,
        now: float | None = None,
    ) -> bool:
        """Replace the reservation by the tokens used and append the event; False if a no-op."""
        if used_tokens < 0:
            raise ValueError("used_tokens must be >= 0")
        _, now_ms, _, _ = self._windows(now)
        rid = ticket.request_id
        tenant, scopes = self._pair(ticket.tenant_id, ticket.key_id)
        entry = tenant.open.pop(rid, None)
        tomb = tenant.lapsed.get(rid, -1)
        if entry is None and tomb <= now_ms:
            return False
        tenant.lapsed.pop(rid, None)
        tpm_key, tpm_tenant, reserved, first_b, first, last_b, last = settle_args(ticket)
        sec = now_ms // 1000
        for st, tpm in zip(scopes, (tpm_key, tpm_tenant), strict=True):
            if entry is not None:
                st.held, st.n = max(st.held - entry.tokens, 0), max(st.n - 1, 0)
            if used_tokens > 0:
                st.charge(used_tokens, ticket.day, ticket.month)
            delta = used_tokens - reserved
            if tpm and delta > 0:
                st.tpm.add(st.tpm.roll(sec), delta)
            elif tpm and delta < 0:
                st.tpm.refund(-delta, [(last_b, last), (first_b, first)], sec)
        if event is not None:
            self.events.append(event)
        return True

    async def record(self, event: bytes, *, shard_key: str) -> bool:
        """Append the event of a request never admitted; False if the queue is over its bound."""
        if self.events.over_bound:
            return False
        self.events.append(event)
        return True

    async def seed(
        self, subject: Subject, tenant_usage: Usage, key_usage: Usage, *, now: float | None = None
    ) -> None:
        """Set unseeded counters to max(existing, given) and mark both scopes seeded."""
        _, _, day, month = self._windows(now)
        _, scopes = self._pair(subject.tenant_id, subject.key_id)
        for st, given in zip(scopes, (key_usage, tenant_usage), strict=True):
            if st.seeded:
                continue
            st.day, st.day_v = merge(st.day, st.day_v, day, given.day, max)
            st.month, st.month_v = merge(st.month, st.month_v, month, given.month, max)
            st.total = max(st.total, given.total)
            st.seeded = True

    async def usage(self, subject: Subject, *, now: float | None = None) -> tuple[Usage, Usage]:
        """(tenant, key) usage: settled in the current windows, and reserved in flight."""
        _, now_ms, day, month = self._windows(now)
        tenant, scopes = self._pair(subject.tenant_id, subject.key_id)
        gone = tenant.expired(now_ms, subject.key_id)
        key, whole = (
            Usage(*st.settled(day, month), max(st.held - g, 0))
            for st, g in zip(scopes, gone, strict=True)
        )
        return whole, key

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Drop all state (the event queue stays for a writer still draining it)."""
        self._tenants.clear()
