"""Small helpers: Go-style JSON, timestamps, durations, token estimates, hashing."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import struct
import time
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_GO_DURATION_NS = 2**63 - 1


def go_json(obj: Any, sort_keys: bool = False) -> str:
    """Serialise like Go's encoding/json: compact, UTF-8, HTML characters escaped.

    `sort_keys` for Go maps (json.Marshal sorts map keys; struct fields keep their order).
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_json_bytes(obj: Any, newline: bool = False) -> bytes:
    """Go-style JSON as bytes, optionally newline-terminated."""
    return (go_json(obj) + ("\n" if newline else "")).encode()


def _frac(ns: int) -> str:
    digits = f"{ns:09d}".rstrip("0")
    return f".{digits}" if digits else ""


@functools.lru_cache(maxsize=4)
def _utc_seconds(secs: int) -> str:
    return datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339_utc(ns: int | None = None) -> str:
    """RFC3339Nano in UTC with trailing zeros trimmed, e.g. 2025-10-17T23:14:07.414671Z."""
    ns = time.time_ns() if ns is None else ns
    secs, rem = divmod(ns, 1_000_000_000)
    return f"{_utc_seconds(secs)}{_frac(rem)}Z"


def rfc3339_local(ns: int) -> str:
    """RFC3339Nano with the local UTC offset, e.g. 2025-05-10T08:06:48.639712648-07:00."""
    secs, rem = divmod(ns, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(secs, tz=UTC).astimezone()
    except (OverflowError, OSError, ValueError):
        moment = datetime(9999, 12, 31, tzinfo=UTC)
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0) and moment.tzname() in ("UTC", "GMT", None):
        zone = "Z"
    else:
        total = int(offset.total_seconds())
        sign = "+" if total >= 0 else "-"
        hours, minutes = divmod(abs(total) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}{_frac(rem)}{zone}"


def estimate_tokens(text: str) -> int:
    """Rough tokenizer: about four characters per token."""
    return math.ceil(len(text) / 4)


def stable_int(*parts: str) -> int:
    """A deterministic 64-bit integer derived from the given strings."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sha256_hex(text: str) -> str:
    """Hex sha256 of a string."""
    return hashlib.sha256(text.encode()).hexdigest()


def float32(value: float) -> float:
    """Round to the nearest float32 and return its shortest decimal form."""
    exact: float = struct.unpack("<f", struct.pack("<f", value))[0]
    for digits in range(6, 10):
        candidate = float(f"{exact:.{digits}g}")
        if struct.pack("<f", candidate) == struct.pack("<f", exact):
            return candidate
    return exact
