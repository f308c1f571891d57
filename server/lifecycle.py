"""Per-worker start-up and shut-down: pools, clients, caches and background tasks."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from loguru import logger
from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sanic import Sanic

from config import Settings
from limits import LimitsBackend, MemoryLimits, RedisLimits
from server.auth import Authenticator
from server.context import Services, services
from server.db import close_db, init_db
from server.keycache import KeyCache
from server.listener import listen_redis, poll_database
from server.logs import setup_logging
from server.recorder import Recorder

INVALIDATION_TASK = "nzgw-invalidation"
RECORDER_TASK = "nzgw-recorder"


def make_redis(url: str) -> Redis:
    """A client that fails fast (no retry storm), so fail-closed answers come within a second."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=2.0,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=10,
    )
    return Redis(connection_pool=pool)


def make_limits(settings: Settings, redis: Redis | None) -> LimitsBackend:
    """The Redis limits backend when Redis is configured, else the in-process one."""
    if redis is None:
        return MemoryLimits(
            tz=settings.tz,
            lease_ttl=settings.lease_ttl,
            default_output_reserve=settings.default_output_reserve,
        )
    return RedisLimits(
        redis,
        tz=settings.tz,
        namespace=settings.redis_namespace,
        lease_ttl=settings.lease_ttl,
        default_output_reserve=settings.default_output_reserve,
        owns_client=False,
    )


def setup_listeners(app: Sanic[Any, Any], settings: Settings) -> None:
    """Register the worker lifecycle listeners on the app."""

    @app.before_server_start
    async def start(app: Sanic[Any, Any]) -> None:
        setup_logging(settings.log_format, settings.log_level)
        await init_db(settings)
        redis = make_redis(settings.redis_url) if settings.redis_url else None
        cache = KeyCache(
            size=settings.key_cache_size,
            ttl=settings.key_cache_ttl,
            negative_ttl=settings.negative_cache_ttl,
        )
        svc = Services(
            settings=settings,
            redis=redis,
            limits=make_limits(settings, redis),
            cache=cache,
            auth=Authenticator(
                cache,
                verify_concurrency=settings.verify_concurrency,
                cache_size=settings.key_cache_size,
            ),
            recorder=Recorder(postgres=settings.is_postgres),
        )
        app.ctx.services = svc
        if redis is not None:
            watcher = listen_redis(redis, settings.redis_namespace, cache, svc.ready)
        else:
            watcher = poll_database(cache, svc.ready)
        app.add_task(watcher, name=INVALIDATION_TASK)
        app.add_task(svc.recorder.run(settings.audit_flush_interval), name=RECORDER_TASK)
        app.ctx.task_names.extend((INVALIDATION_TASK, RECORDER_TASK))
        for hook in app.ctx.start_hooks:
            await hook(app, svc)
        try:
            await asyncio.wait_for(svc.ready.wait(), timeout=5.0)
        except TimeoutError:
            logger.warning("invalidation channel not ready yet; the cache TTL bounds staleness")
        logger.info("worker started pid={}", os.getpid())

    @app.before_server_stop
    async def drain(app: Sanic[Any, Any]) -> None:
        """Stop the background loops; requests in flight still finish after this."""
        for name in app.ctx.task_names:
            await app.cancel_task(name, raise_exception=False)

    @app.after_server_stop
    async def stop(app: Sanic[Any, Any]) -> None:
        """Connections are drained: close clients, write what is buffered, close pools."""
        svc = services(app)
        for hook in reversed(app.ctx.stop_hooks):
            await hook(app, svc)
        if not await svc.recorder.flush():
            logger.error(
                "{} audit/usage records could not be written at shutdown", len(svc.recorder)
            )
        await svc.limits.close()
        if svc.redis is not None:
            await svc.redis.aclose()
        await close_db()
