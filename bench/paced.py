"""64 concurrent paced streams: how late each chunk reaches the client, gateway against direct."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from bench.httpraw import Conn, request_bytes
from bench.scenarios import PACED, Target
from bench.stack import Stack


def parse_created_at(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanosecond digits."""
    base, dot, rest = text.partition(".")
    digits = ""
    if dot:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits, zone = rest[:i], rest[i:]
    else:
        base, zone = text[:19], text[19:]
    moment = datetime.fromisoformat(base + (zone or "Z"))
    return moment.timestamp() + (int(digits) / 10 ** len(digits) if digits else 0.0)


async def _stream(target: Target, raw: bytes) -> tuple[float, list[float]]:
    """One /api/chat stream: the first chunk's delay, and for each NDJSON line, its arrival
    time minus the fake's created_at."""
    host, port = target.host_port
    conn = Conn(host, port)
    lags: list[float] = []
    buf = b""
    started, first = time.time(), 0.0
    try:
        async for chunk in conn.exchange(raw):
            now = time.time()
            first = first or now - started
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    lags.append((now - parse_created_at(json.loads(line)["created_at"])) * 1e3)
    finally:
        await conn.close()
    return first * 1e3, lags


async def _all(target: Target, streams: int, timeout: float) -> list[tuple[float, list[float]]]:
    host, port = target.host_port
    raw = request_bytes(host, port, PACED.path, target.headers, PACED.payload)
    return await asyncio.wait_for(
        asyncio.gather(*(_stream(target, raw) for _ in range(streams))), timeout
    )


def chunk_lags_ms(
    target: Target, streams: int, chunks: int, pace_ms: float
) -> list[tuple[float, list[float]]]:
    """Per stream: ms to its first chunk, and per chunk, ms from the fake writing it to the
    client reading it."""
    timeout = 30 + chunks * pace_ms / 1000 * 3
    return asyncio.run(_all(target, streams, timeout))


def summarise(lags: list[float], firsts: list[float], limit_ms: float) -> dict[str, float]:
    """p50, p99 and max of the per-chunk lags, the share within `limit_ms`, first chunk times."""
    ordered = sorted(lags)
    n = len(ordered)
    return {
        "first_chunk_p50_ms": sorted(firsts)[len(firsts) // 2],
        "first_chunk_max_ms": max(firsts),
        "chunks": float(n),
        "p50_ms": ordered[n // 2],
        "p99_ms": ordered[min(n - 1, int(0.99 * n))],
        "max_ms": ordered[-1],
        "within_limit": sum(1 for x in ordered if x <= limit_ms) / n,
    }


def paced_check(
    stack: Stack,
    targets: list[Target],
    *,
    rounds: int,
    streams: int = 64,
    chunks: int = 64,
    pace_ms: float = 20.0,
    limit_ms: float = 5.0,
) -> dict[str, object]:
    """Switch the fake to paced streams, run the streams against each target, switch back."""
    stack.fake_reset()
    stack.fake_config(pace_ms=pace_ms, tokens=chunks)
    lags: dict[str, list[float]] = {t.name: [] for t in targets}
    firsts: dict[str, list[float]] = {t.name: [] for t in targets}
    try:
        for _ in range(rounds):
            for t in targets:
                for first, stream in chunk_lags_ms(t, streams, chunks, pace_ms):
                    firsts[t.name].append(first)
                    lags[t.name] += stream
    finally:
        stack.fake_reset()
    out: dict[str, object] = {
        "streams": streams,
        "chunks_per_stream": chunks,
        "pace_ms": pace_ms,
        "limit_ms": limit_ms,
        "rounds": rounds,
    }
    for name, values in lags.items():
        out[name] = summarise(values, firsts[name], limit_ms)
    return out
