"""Day and month ids and the seconds to the next window, in a time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from limits.windows import (
    day_id,
    month_id,
    seconds_to_next_day,
    seconds_to_next_month,
    window_ids,
)

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def ts(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    micro: int = 0,
    tz: ZoneInfo = UTC,
) -> float:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).timestamp()


def test_ids_follow_the_time_zone() -> None:
    late = ts(2026, 12, 31, 23, 30)
    assert (day_id(late, UTC), month_id(late, UTC)) == ("2026-12-31", "2026-12")
    assert (day_id(late, BERLIN), month_id(late, BERLIN)) == ("2027-01-01", "2027-01")
    assert window_ids(late, BERLIN) == ("2027-01-01", "2027-01")
    assert window_ids(ts(987, 6, 5, 4, 3), UTC) == ("0987-06-05", "0987-06")


def test_seconds_to_next_day() -> None:
    assert seconds_to_next_day(ts(2026, 11, 26, 12, 0), UTC) == 12 * 3600
    assert seconds_to_next_day(ts(2026, 11, 26, 22, 30), BERLIN) == 1800
    assert seconds_to_next_day(ts(2026, 11, 26, 23, 59, 59, 500_000), UTC) == 1
    assert seconds_to_next_day(ts(2026, 11, 27), UTC) == 86400


def test_seconds_to_next_day_across_dst() -> None:
    # 2026-03-29 in Berlin has 23 hours, 2026-10-25 has 25
    assert seconds_to_next_day(ts(2026, 3, 29, 0, 0, tz=BERLIN), BERLIN) == 23 * 3600
    assert seconds_to_next_day(ts(2026, 10, 25, 0, 0, tz=BERLIN), BERLIN) == 25 * 3600


def test_seconds_to_next_month() -> None:
    assert seconds_to_next_month(ts(2026, 11, 30, 12, 0), UTC) == 12 * 3600
    assert seconds_to_next_month(ts(2026, 12, 31, 22, 0), UTC) == 2 * 3600
    assert seconds_to_next_month(ts(2026, 12, 31, 22, 0), BERLIN) == 3600
    assert seconds_to_next_month(ts(2026, 12, 31, 23, 30), BERLIN) == 31 * 86400 - 1800
