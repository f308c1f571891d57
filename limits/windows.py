"""Budget windows in a time zone: day and month ids, and seconds until the next window."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

TOTAL_RETRY_AFTER_S = 365 * 86400  # a spent total budget never resets on its own


def _local(now: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(now, tz)


def day_id(now: float, tz: ZoneInfo) -> str:
    """The local date of ``now`` in ``tz``, e.g. ``2026-11-26``."""
    return _local(now, tz).strftime("%Y-%m-%d")


def month_id(now: float, tz: ZoneInfo) -> str:
    """The local month of ``now`` in ``tz``, e.g. ``2026-11``."""
    return _local(now, tz).strftime("%Y-%m")


def window_ids(now: float, tz: ZoneInfo) -> tuple[str, str]:
    """(day id, month id) of ``now`` in ``tz``, computed once."""
    local = _local(now, tz)
    month = f"{local.year:04d}-{local.month:02d}"
    return f"{month}-{local.day:02d}", month


def _until(now: float, moment: datetime) -> int:
    return max(1, math.ceil(moment.timestamp() - now))


def seconds_to_next_day(now: float, tz: ZoneInfo) -> int:
    """Whole seconds (>= 1) until the next local midnight in ``tz``."""
    local = _local(now, tz)
    tomorrow = local.date() + timedelta(days=1)
    return _until(now, datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz))


def seconds_to_next_month(now: float, tz: ZoneInfo) -> int:
    """Whole seconds (>= 1) until local midnight of the next 1st in ``tz``."""
    local = _local(now, tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return _until(now, datetime(year, month, 1, tzinfo=tz))
