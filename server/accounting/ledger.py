"""Usage read from the UsageDaily ledger: one aggregate query per day, month and all time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

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
