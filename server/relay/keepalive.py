"""keep_alive as Ollama reads it (Go's time.ParseDuration or seconds), capped by the operator."""

from __future__ import annotations

import math
from typing import Any

from config.durations import parse_duration
from server.errors import BadRequest

FOREVER = math.inf


def keep_alive_seconds(value: Any) -> float:
    """What Ollama makes of a keep_alive value: seconds, FOREVER for a negative one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRequest('keep_alive must be a duration such as "5m" or a number of seconds')
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise BadRequest(f'keep_alive {value!r} is not a duration such as "5m"') from exc
    else:
        seconds = float(value)
    return FOREVER if seconds < 0 else seconds


def capped_keep_alive(value: Any, cap: float | None) -> Any:
    """The keep_alive to forward: the client's own value when within the cap, else the cap."""
    seconds = keep_alive_seconds(value)
    if cap is None or seconds <= cap:
        return value
    return f"{int(cap)}s" if float(cap).is_integer() else f"{cap}s"
