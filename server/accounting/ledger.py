"""Usage read from the UsageDaily ledger: budget windows, and breakdowns by day, month or model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from tortoise.expressions import Q
from tortoise.functions import Sum

from models import UsageDaily

_COLUMNS = ("requests", "prompt_tokens", "completion_tokens")
_PERIODS = ("day", "month", "total")


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Requests and tokens over one period."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens: what budgets count."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class LedgerUsage:
    """What a key (or a whole tenant) used on one day, in its calendar month and in all time."""

    today: date
    day: UsageTotals
    month: UsageTotals
    total: UsageTotals

    @property
    def day_tokens(self) -> int:
        """Tokens used on `today` (the daily budget's counter)."""
        return self.day.tokens

    @property
    def month_tokens(self) -> int:
        """Tokens used in `today`'s calendar month (the monthly budget's counter)."""
        return self.month.tokens

    @property
    def total_tokens(self) -> int:
        """Tokens used ever (the total budget's counter)."""
        return self.total.tokens


def month_bounds(today: date) -> tuple[date, date]:
    """The first day of `today`'s month and the first day of the next month."""
    start = today.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _int(value: Decimal | float | str | None) -> int:
    return 0 if value is None else int(value)


async def ledger_usage(*, tenant_id: int, key_id: int | None, today: date) -> LedgerUsage:
    """Sum the ledger of one key, or of every key of a tenant when key_id is None.

    `today` is the date in the budget time zone; the month is its calendar month. One
    aggregate query with conditional sums, served by the (tenant, day) and (key, day) indexes.
    """
    start, end = month_bounds(today)
    periods = {"day": Q(day=today), "month": Q(day__gte=start, day__lt=end), "total": None}
    sums = {
        f"{period}_{column}": Sum(column, _filter=condition)
        for period, condition in periods.items()
        for column in _COLUMNS
    }
    query = UsageDaily.filter(tenant_id=tenant_id)
    if key_id is not None:
        query = query.filter(key_id=key_id)
    rows = await query.annotate(**sums).values(*sums)
    row = rows[0] if rows else {}
    totals = {
        period: UsageTotals(*(_int(row.get(f"{period}_{column}")) for column in _COLUMNS))
        for period in _PERIODS
    }
    return LedgerUsage(today=today, **totals)


Breakdown = Literal["day", "month", "model"]
BREAKDOWNS: tuple[Breakdown, ...] = ("day", "month", "model")


@dataclass(frozen=True, slots=True)
class UsageRow:
    """What one key used in one day, month or with one model ("" = requests without one)."""

    group: str
    key_id: int
    totals: UsageTotals


def _add(a: UsageTotals, b: UsageTotals) -> UsageTotals:
    return UsageTotals(
        a.requests + b.requests,
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
    )


async def usage_by(
    *,
    tenant_id: int,
    key_id: int | None,
    by: Breakdown,
    since: date | None = None,
    until: date | None = None,
) -> list[UsageRow]:
    """The ledger of one key (or of every key of a tenant) per key and day, month or model.

    `since` and `until` are inclusive days in the budget time zone. Days and months come in
    time order, models by tokens used (most first); within a group, keys by id.
    """
    query = UsageDaily.filter(tenant_id=tenant_id)
    if key_id is not None:
        query = query.filter(key_id=key_id)
    if since is not None:
        query = query.filter(day__gte=since)
    if until is not None:
        query = query.filter(day__lte=until)
    column = "model" if by == "model" else "day"
    sums = {"r": Sum("requests"), "p": Sum("prompt_tokens"), "c": Sum("completion_tokens")}
    found = await query.annotate(**sums).group_by("key_id", column).values("key_id", column, *sums)
    grouped: dict[tuple[str, int], UsageTotals] = {}
    for row in found:
        value = row[column]
        group = value if by == "model" else value.isoformat()[: 7 if by == "month" else 10]
        totals = UsageTotals(_int(row["r"]), _int(row["p"]), _int(row["c"]))
        slot = (group, int(row["key_id"]))
        grouped[slot] = _add(grouped.get(slot, UsageTotals()), totals)
    rows = [UsageRow(g, k, t) for (g, k), t in grouped.items()]
    if by == "model":
        used = {g: sum(r.totals.tokens for r in rows if r.group == g) for g, _ in grouped}
        return sorted(rows, key=lambda r: (-used[r.group], r.group, r.key_id))
    return sorted(rows, key=lambda r: (r.group, r.key_id))


def per_group(rows: list[UsageRow]) -> list[tuple[str, UsageTotals]]:
    """The rows summed over keys, per group, in the rows' order."""
    out: dict[str, UsageTotals] = {}
    for row in rows:
        out[row.group] = _add(out.get(row.group, UsageTotals()), row.totals)
    return list(out.items())


def overall(rows: list[UsageRow]) -> UsageTotals:
    """All the rows together."""
    total = UsageTotals()
    for row in rows:
        total = _add(total, row.totals)
    return total
