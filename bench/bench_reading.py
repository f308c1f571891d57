"""What the one Go-style reading of a body costs per request, against the reading it replaced.

Run: .venv/bin/python bench/bench_reading.py
Baseline: the previous reading (stdlib json.loads, plain dict lookups, the client's bytes
forwarded unless a cap had to change). New: orjson decode, Go-folded governed fields,
ambiguity checks, the forwarded body always written from the reading.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.relay.body import Kind, parse, upstream_body

SMALL = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    "stream": True,
}
CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "system", "content": "You are helpful. " * 20}]
    + [{"role": "user", "content": f"question {i} " * 30} for i in range(10)],
    "options": {"temperature": 0.7, "num_predict": 256},
    "stream": True,
}
TOOLS = {
    **CHAT,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
        }
        for i in range(20)
    ],
}
IMAGE = {"model": "llava", "prompt": "describe", "images": ["A" * 500_000], "stream": False}


def old_reading(raw: bytes) -> bytes:
    """The previous reading: json.loads, lookups, the client's bytes forwarded as they came."""
    body = json.loads(raw)
    model = body.get("model")
    assert isinstance(model, str)
    _stream = body.get("stream") is not False
    options = body.get("options")
    _cap = options.get("num_predict") if isinstance(options, dict) else None
    chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
    _ = chars // 4
    return raw


def new_reading(raw: bytes) -> bytes:
    """The reading now: decode, resolve, check, and write the forwarded body."""
    return upstream_body(parse(raw, Kind.NATIVE_GENERATE), raw, None)


def per_call_us(fn: Callable[[bytes], Any], raw: bytes, rounds: int = 7) -> float:
    """Median over rounds of the mean time per call, in microseconds."""
    n = max(50, int(20_000 / max(1, len(raw) // 1000 + 1)))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn(raw)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    """Print one row per body: old, new, and the difference per request."""
    print(f"{'body':<8} {'bytes':>8} {'old us':>9} {'new us':>9} {'added us':>9} {'ratio':>6}")
    for name, body in (("small", SMALL), ("chat", CHAT), ("tools", TOOLS), ("image", IMAGE)):
        raw = json.dumps(body).encode()
        old, new = per_call_us(old_reading, raw), per_call_us(new_reading, raw)
        print(
            f"{name:<8} {len(raw):>8} {old:>9.1f} {new:>9.1f} {new - old:>9.1f} {new / old:>6.2f}"
        )


if __name__ == "__main__":
    main()
