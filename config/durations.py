"""Go-style durations ("5m", "1h30m", "-1s", "0"), as Ollama reads keep_alive."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0}
_UNITS |= {"m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds of a Go duration string; ValueError when it is not one (as time.ParseDuration)."""
    rest = text
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest[1:] if rest[:1] in ("+", "-") else rest
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(text)
    total, pos = 0.0, 0
    while pos < len(rest):
        match = _PART.match(rest, pos)
        if match is None:
            raise ValueError(text)
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total
