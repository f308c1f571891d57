"""The writer's own process: writes the streams, and on SIGTERM drains before it exits."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal

from config import Settings
from models import ApiKey, AuditEvent
from server.accounting.process import run_writer_process
from tests.server.accounting.conftest import Streams, event
from tests.server.accounting.test_writer import until


async def test_the_writer_process_writes_and_drains_on_sigterm(
    settings: Settings, streams: Streams, key: ApiKey
) -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=run_writer_process,
        args=(settings.with_(log_format="text"),),
        kwargs={"grace": 5.0},
    )
    process.start()
    try:
        for n in range(20):
            await streams.append(event(f"p{n}", key), shard=n % 16)
        await until(lambda: _count(20), timeout=30)
        for n in range(20, 40):
            await streams.append(event(f"p{n}", key), shard=n % 16)
        assert process.pid is not None
        os.kill(process.pid, signal.SIGTERM)  # stop at once: what was queued is still written
        await asyncio.to_thread(process.join, 15)
        assert process.exitcode == 0
        assert await AuditEvent.all().count() == 40
        assert sum(await streams.lengths()) == 0
    finally:
        if process.is_alive():
            process.kill()


async def _count(expected: int) -> bool:
    return await AuditEvent.all().count() == expected
