"""Time to the first streamed chunk, which wrk cannot see: sequential requests on one connection."""

from __future__ import annotations

import asyncio
import time

from bench.httpraw import Conn, request_bytes
from bench.scenarios import Scenario, Target


async def _measure(target: Target, scenario: Scenario, n: int, timeout: float) -> list[float]:
    host, port = target.host_port
    raw = request_bytes(host, port, scenario.path, target.headers, scenario.payload)
    conn = Conn(host, port)
    out: list[float] = []

    async def one() -> float:
        first = 0.0
        started = time.perf_counter()
        async for _chunk in conn.exchange(raw):
            if not first:
                first = time.perf_counter() - started
        return first

    try:
        for _ in range(n):
            out.append(await asyncio.wait_for(one(), timeout) * 1e3)
    finally:
        await conn.close()
    return out


def first_chunk_ms(
    target: Target, scenario: Scenario, n: int, timeout: float = 30.0
) -> list[float]:
    """Milliseconds from sending each of `n` requests to its first body chunk."""
    return asyncio.run(_measure(target, scenario, n, timeout))
