"""The audit writer's own process: one per replica, started by Sanic's manager (Redis only).

    app.manager.manage(WRITER_PROCESS, run_writer_process, {"settings": settings})

It opens its own database pool and Redis client, writes the replica's share of every stream
until SIGINT (Sanic's stop) or SIGTERM, then drains for `grace` seconds; what is left stays in
the streams for the next writer (this replica restarted, or another one, which claims it).
"""

from __future__ import annotations

import asyncio
import os
import signal

from loguru import logger

from config import Settings
from server.accounting.queue import StreamSource
from server.accounting.writer import Writer
from server.observe.logs import setup_logging
from server.stores.database import close_db, init_db
from server.stores.redis_clients import open_redis

WRITER_PROCESS = "AuditWriter"


def run_writer_process(settings: Settings, grace: float = 12.0, claim_idle: float = 60.0) -> None:
    """The process's entry point: write until told to stop (never raises on a stop signal)."""
    asyncio.run(serve_writer(settings, grace=grace, claim_idle=claim_idle))


async def serve_writer(settings: Settings, *, grace: float, claim_idle: float) -> None:
    """Run one stream writer in this event loop until SIGINT/SIGTERM, then drain."""
    if settings.redis_url is None:
        raise ValueError("the audit writer process reads Redis streams: REDIS_URL is not set")
    setup_logging(settings.log_format, settings.log_level)
    await init_db(settings)
    redis = open_redis(settings, timeout=10.0, connect_timeout=2.0, retries=3)
    source = StreamSource(redis, settings.redis_namespace, claim_idle=claim_idle)
    writer = Writer(source, postgres=settings.is_postgres)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, writer.stop, grace)
    logger.info("audit writer started pid={} consumer={}", os.getpid(), source.consumer)
    try:
        await writer.run()
    finally:
        stats = writer.stats
        logger.info(
            "audit writer stopped: {} written, {} duplicates, {} dead letters",
            stats.written,
            stats.duplicates,
            stats.dead_letters,
        )
        await redis.aclose()
        await close_db()
