"""MemoryLimits' admission: admit.lua's decision in Python, on a tenant's in-process state."""

from __future__ import annotations

from limits.memory_state import WINDOW_MS, Entry, Scope, Tenant
from limits.policy import Ask, Subject
from limits.settings import Tuning
from limits.verdict import ADMITTED, DENIED, NEEDS_SEED, NO_RATE, limit_args

_DENY_ORDER = (6, 5, 4, 1, 2, 3)  # total, monthly, daily, requests, tokens, concurrency


def admit_verdict(
    tenant: Tenant,
    scopes: tuple[Scope, Scope],
    subject: Subject,
    ask: Ask,
    tune: Tuning,
    *,
    now: int,
    day: str,
    month: str,
) -> list[int]:
    """The verdict list of admit.lua (see limits/verdict.py), reserving if admitted."""
    if ask.request_id in tenant.open:
        raise ValueError("request id already in flight")
    lim = (limit_args(subject.key), limit_args(subject.tenant))
    sec = now // 1000
    prompt, kind = ask.prompt_tokens, ask.output
    max_output = -1 if ask.max_output is None else ask.max_output
    for s in (0, 1):
        if max(lim[s][3:]) >= 0 and not scopes[s].seeded:
            return [NEEDS_SEED, -1, -1, -1, -1, -1, now, 0, *NO_RATE]
    tenant.purge(now, tune.grace_ms)  # something lapsed: release it

    # read (rolling the minutes forward)
    used: list[list[int]] = []
    buckets: list[dict[str, int]] = []
    for s, st in enumerate(scopes):
        u = [0] * 6
        b: dict[str, int] = {}
        if lim[s][0] >= 0:
            b["r"] = st.rpm.roll(sec)
            u[0] = st.rpm.sum
        if lim[s][1] >= 0:
            b["t"] = st.tpm.roll(sec)
            u[1] = st.tpm.sum
        u[2] = st.n
        settled = st.settled(day, month)
        u[3], u[4], u[5] = (st.held + v for v in settled)
        used.append(u)
        buckets.append(b)

    # decide: a generation needs room for its prompt and one output token, "none" for its prompt
    need = prompt + (0 if kind == "none" else 1)
    allowance: int | None = None
    deny_s = deny_i = retry = -1
    for i in _DENY_ORDER:
        for s in (0, 1):
            limit = lim[s][i - 1]
            if deny_s >= 0 or limit < 0:
                continue
            st = scopes[s]
            if i == 1:
                if used[s][0] >= limit:
                    deny_s, deny_i = s, i
                    retry = st.rpm.wait(used[s][0] - limit + 1, buckets[s]["r"], now)
            elif i == 3:
                if used[s][2] >= limit:
                    deny_s, deny_i, retry = s, i, 1000
            else:
                left = limit - used[s][i - 1]
                if need > 0 and left < need:
                    deny_s, deny_i = s, i
                    if i == 2:
                        retry = st.tpm.wait(need - left, buckets[s]["t"], now)
                    elif left + st.held >= need:
                        retry = 1000  # not spent: held by requests in flight
                elif allowance is None or left - prompt < allowance:
                    allowance = left - prompt
    admitted = deny_s < 0

    # what to reserve; allowance is set iff a token limit applies
    cap, out, stepped = -1, 0, 0
    if kind == "single":
        if allowance is not None:
            cap = min(max_output if max_output >= 0 else tune.non_stream_cap, allowance)
            out = cap
        else:
            cap, out = max_output, max_output if max_output >= 0 else tune.output_step
    elif kind == "stream":
        cap = max_output
        if allowance is not None and (cap < 0 or allowance < cap):
            cap = allowance
        out = min(tune.output_step, cap) if cap >= 0 else tune.output_step
        stepped = int(allowance is not None and out < cap)
    reserved = prompt + out

    # rate info from the tightest scope
    rl = rr = rreset = tl = tr = treset = -1
    for s, st in enumerate(scopes):
        if lim[s][0] >= 0:
            rem = max(lim[s][0] - used[s][0] - (1 if admitted else 0), 0)
            if rr < 0 or rem < rr:
                rl, rr, rreset = lim[s][0], rem, st.rpm.reset(now, WINDOW_MS)
        if lim[s][1] >= 0:
            rem = max(lim[s][1] - used[s][1] - (reserved if admitted else 0), 0)
            if tr < 0 or rem < tr:
                tl, tr = lim[s][1], rem
                treset = st.tpm.reset(now, (sec + 60) * 1000 - now)
    rate = [rl, rr, rreset, tl, tr, treset]
    if not admitted:
        return [DENIED, deny_s + 1, deny_i, retry, -1, -1, now, 0, *rate]

    # reserve everywhere
    tenant.open[ask.request_id] = Entry(reserved, now + tune.ttl_ms, subject.key_id)
    tenant.nx = now + tune.ttl_ms if tenant.nx is None else min(tenant.nx, now + tune.ttl_ms)
    for s, st in enumerate(scopes):
        st.held += reserved
        st.n += 1
        if "r" in buckets[s]:
            st.rpm.add(buckets[s]["r"], 1)
        if "t" in buckets[s]:
            st.tpm.add(buckets[s]["t"], reserved)
    return [ADMITTED, -1, -1, -1, cap, reserved, now, stepped, *rate]
