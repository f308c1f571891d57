"""Go's time.ParseDuration and float-to-int64 conversion, for api.Duration (keep_alive)."""

from __future__ import annotations

import math

MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


class DurationError(ValueError):
    """time.ParseDuration's error; str() is Go's message."""


def go_int64(value: float) -> int:
    """int64(value) as amd64 converts it: truncation, and MinInt64 when out of range or NaN."""
    if math.isnan(value) or not -(2.0**63) <= value < 2.0**63:
        return MIN_INT64
    return int(value)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    return text[:end], text[end:]


def parse_duration(orig: str) -> int:
    """time.ParseDuration: nanoseconds, or DurationError with Go's message."""
    invalid = DurationError(f"time: invalid duration {_quote(orig)}")
    text, negative = orig, False
    if text and text[0] in "+-":
        negative, text = text[0] == "-", text[1:]
    if text == "0":
        return 0
    if not text:
        raise invalid
    total = 0
    while text:
        if not (text[0] == "." or (text[0].isascii() and text[0].isdigit())):
            raise invalid
        whole, text = _digits(text)
        fraction = ""
        if text.startswith("."):
            fraction, text = _digits(text[1:])
            if not whole and not fraction:
                raise invalid
        end = 0
        while end < len(text) and not (text[end] == "." or text[end].isdigit()):
            end += 1
        if end == 0:
            raise DurationError(f"time: missing unit in duration {_quote(orig)}")
        unit_name, text = text[:end], text[end:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {_quote(unit_name)} in duration {_quote(orig)}"
            )
        value = int(whole or "0")
        if value > 2**63 // unit:
            raise invalid
        value *= unit
        if fraction.strip("0"):
            value += int(int(fraction) * (unit / 10 ** len(fraction)))
        total += value
        if total > 2**63:
            raise invalid
    if negative:
        return -total
    if total > MAX_INT64:
        raise invalid
    return total
