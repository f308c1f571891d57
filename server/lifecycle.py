"""Per-worker start-up and shut-down: pools, clients, caches and background tasks."""

from __future__ import annotations

import asyncio
import os
import time

from loguru import logger

from config import Settings
from limits import AnyRedis, LimitsBackend, LimitsUnavailable, MemoryLimits, RedisLimits
from server.accounting.process import WRITER_PROCESS, run_writer_process
from server.accounting.queue import StreamSource
from server.accounting.recorder import Recorder
from server.accounting.writer import Writer
from server.auth.authenticator import Authenticator
from server.auth.invalidation import listen_redis, poll_database
from server.auth.keycache import KeyCache
from server.context import App, Worker
from server.observe.logs import AccessLog, setup_logging
from server.observe.metrics import Metrics, serve_exposition
from server.observe.readiness import audit_detail
from server.relay.backends import BackendRegistry
from server.relay.body import Rules
from server.stores.database import close_db, init_db
from server.stores.redis_clients import open_redis

INVALIDATION_TASK = "nzgw-invalidation"
RECORDER_TASK = "nzgw-recorder"
HEALTH_TASK = "nzgw-backend-health"
HEARTBEAT_TASK = "nzgw-heartbeat"
WRITER_TASK = "nzgw-audit-writer"
QUEUE_TASK = "nzgw-audit-gauges"
QUEUE_GAUGE_INTERVAL = 15.0
WRITER_GRACE = 12.0  # longer than the connections' drain: the last requests' events go too
START_PROBE_TIMEOUT = 5.0


def make_limits(settings: Settings, redis: AnyRedis | None) -> LimitsBackend:
    """The Redis limits backend when Redis is configured, else the in-process one."""
    if redis is None:
        return MemoryLimits(
            tz=settings.tz,
            lease_ttl=settings.lease_ttl,
            output_step=settings.output_reserve_step,
            non_stream_cap=settings.non_stream_output_cap,
            events_max_bytes=settings.audit_queue_max_bytes,
        )
    return RedisLimits(
        redis,
        tz=settings.tz,
        namespace=settings.redis_namespace,
        lease_ttl=settings.lease_ttl,
        output_step=settings.output_reserve_step,
        non_stream_cap=settings.non_stream_output_cap,
        events_max_bytes=settings.audit_queue_max_bytes,
        owns_client=False,
    )


def fallback_bound(settings: Settings) -> int | None:
    """Bytes a worker's in-process audit queue may hold: twice AUDIT_QUEUE_MAX_BYTES.

    At AUDIT_QUEUE_MAX_BYTES new requests are refused (503); the second half holds the events
    of the requests refused meanwhile, and those Redis could not take. Past it an event is
    lost, counted and logged.
    """
    bound = settings.audit_queue_max_bytes
    return None if bound is None else 2 * bound


async def _build(app: App) -> Worker:
    """Open everything one worker needs, in dependency order."""
    ctx = app.ctx
    settings = ctx.settings
    await init_db(settings)
    redis = open_redis(settings) if settings.redis_url else None  # fails fast: 503s in ~1 s
    cache = KeyCache(
        size=settings.key_cache_size,
        ttl=settings.key_cache_ttl,
        negative_ttl=settings.negative_cache_ttl,
    )
    metrics = Metrics(settings.metrics_dir)
    limits = ctx.limits or make_limits(settings, redis)
    events = limits.events if isinstance(limits, MemoryLimits) else None
    return Worker(
        settings=settings,
        redis=redis,
        limits=limits,
        owns_limits=ctx.limits is None,
        cache=cache,
        auth=Authenticator(
            cache,
            verify_concurrency=settings.verify_concurrency,
            cache_size=settings.key_cache_size,
            negative_ttl=settings.negative_cache_ttl,
            metrics=metrics,
        ),
        recorder=Recorder(
            postgres=settings.is_postgres, queue=events, max_bytes=fallback_bound(settings)
        ),
        backends=BackendRegistry.build(settings, ctx.transport, metrics),
        rules=Rules(
            max_keep_alive=settings.max_keep_alive,
            max_num_ctx=settings.max_num_ctx,
            allow_cloud=settings.allow_cloud_models,
        ),
        metrics=metrics,
        access=AccessLog(settings.log_format, settings.log_level),
    )


async def heartbeat(worker: Worker) -> None:
    """Every LEASE_TTL/3, renew the lease and reservation of every request still running.

    A 20-minute generation keeps its concurrency slot and its reservation; a crashed worker's
    leases still lapse by themselves, since nothing renews them.
    """
    interval = worker.settings.lease_ttl / 3
    while True:
        await asyncio.sleep(interval)
        for ctx in list(worker.live.values()):
            if ctx.ticket is None or time.perf_counter() - ctx.started < interval:
                continue
            try:
                await worker.limits.refresh(ctx.ticket)
            except LimitsUnavailable as exc:
                logger.warning(
                    "heartbeat failed ({}); leases lapse if it lasts", type(exc).__name__
                )
                break


def stream_writer(settings: Settings) -> Writer:
    """A writer of the audit streams inside this worker (one worker: no manager process)."""
    client = open_redis(settings, timeout=10.0, connect_timeout=2.0, retries=3)
    return Writer(StreamSource(client, settings.redis_namespace), postgres=settings.is_postgres)


async def _stop_stream_writer(worker: Worker) -> None:
    """Drain the audit streams as this worker stops (its last requests' events included).

    With several workers the replica's writer process may stop before a stream that was still
    in flight settles, so each worker writes what is in the streams once its own requests are
    done; what it cannot write stays there for the next writer.
    """
    writer, task = worker.stream_writer, worker.stream_task
    settings = worker.settings
    if writer is None and settings.redis_url is not None:
        writer = stream_writer(settings)
        if not await writer.flush(within=WRITER_GRACE):
            logger.warning("audit events left in the streams for the next writer")
    elif writer is not None and task is not None:
        writer.stop(WRITER_GRACE)
        try:
            await asyncio.wait_for(task, timeout=WRITER_GRACE + 5)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - the rest stays in the streams
            logger.warning("audit writer did not finish its drain ({})", type(exc).__name__)
    if writer is None:
        return
    source = writer.source
    if isinstance(source, StreamSource):
        await source.redis.aclose()


async def observe_queue(worker: Worker) -> None:
    """Keep the audit queue's gauges current (and log a backlog that does not drain).

    Read at once, then every QUEUE_GAUGE_INTERVAL: a scrape never shows the gauges' initial 0
    for a queue that holds events, and what it shows is at most that old.
    """
    while True:
        status = await audit_detail(worker)
        backlog = status.get("backlog")
        if isinstance(backlog, int) and backlog > 10_000:
            logger.warning("audit backlog: {} events waiting to be written", backlog)
        await asyncio.sleep(QUEUE_GAUGE_INTERVAL)


def _start_tasks(worker: Worker) -> None:
    """The worker's background loops; drain() cancels them when shutdown begins."""
    settings = worker.settings
    if worker.redis is not None:
        watcher = listen_redis(worker.redis, settings.redis_namespace, worker.cache, worker.ready)
    else:
        watcher = poll_database(worker.cache, worker.ready)
    loops = {
        HEARTBEAT_TASK: heartbeat(worker),
        QUEUE_TASK: observe_queue(worker),
        INVALIDATION_TASK: watcher,
        RECORDER_TASK: worker.recorder.run(settings.audit_flush_interval),
        HEALTH_TASK: worker.backends.run(settings.backend_probe_interval),
    }
    worker.tasks.extend(asyncio.create_task(coro, name=name) for name, coro in loops.items())


async def start(app: App) -> None:
    """before_server_start: build the worker's services and start its background loops."""
    setup_logging(app.ctx.settings.log_format, app.ctx.settings.log_level)
    worker = await _build(app)
    app.ctx.worker_ = worker
    try:
        await asyncio.wait_for(worker.backends.refresh(), timeout=START_PROBE_TIMEOUT)
    except TimeoutError:
        pass  # the health task keeps probing; requests still try every backend in order
    _start_tasks(worker)
    settings = worker.settings
    if settings.redis_url and settings.workers == 1:  # several: a process under the manager
        worker.stream_writer = stream_writer(settings)
        worker.stream_task = asyncio.create_task(worker.stream_writer.run(), name=WRITER_TASK)
    if settings.metrics_port and settings.workers == 1:  # several: the main process serves it
        host = settings.metrics_host or settings.host
        serve_exposition(settings.metrics_port, host, worker.metrics.registry)
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=5.0)
    except TimeoutError:
        logger.warning("invalidation channel not ready yet; the cache TTL bounds staleness")
    logger.info("worker started pid={}", os.getpid())


async def _cancel(worker: Worker, *, keep: frozenset[str] = frozenset()) -> None:
    """Cancel the worker's background loops but those named in `keep`."""
    going = [t for t in worker.tasks if t.get_name() not in keep]
    for task in going:
        task.cancel()
    await asyncio.gather(*going, return_exceptions=True)
    worker.tasks[:] = [t for t in worker.tasks if t not in going]


async def drain(app: App) -> None:
    """before_server_stop: stop the background loops; requests in flight still finish.

    The heartbeat stays until they have: a stream still running keeps renewing its lease and
    reservation through the graceful-shutdown time, whatever LEASE_TTL is.
    """
    await _cancel(app.ctx.worker, keep=frozenset({HEARTBEAT_TASK}))


async def stop(app: App) -> None:
    """after_server_stop: connections are drained; close clients, write what is buffered."""
    worker = app.ctx.worker
    await _cancel(worker)
    await worker.backends.aclose()
    await _stop_stream_writer(worker)
    if not await worker.recorder.flush():
        logger.error(
            "{} audit/usage records could not be written at shutdown", len(worker.recorder)
        )
    if worker.owns_limits:
        await worker.limits.close()
    if worker.redis is not None:
        await worker.redis.aclose()
    worker.metrics.worker_exited()
    await close_db()


def manage_writer(app: App) -> None:
    """main_process_ready: several workers on Redis get one audit writer process per replica."""
    settings = app.ctx.settings
    if settings.redis_url and settings.workers > 1:
        app.manager.manage(WRITER_PROCESS, run_writer_process, {"settings": settings})


def setup_listeners(app: App) -> None:
    """Register the worker lifecycle listeners on the app."""
    app.register_listener(manage_writer, "main_process_ready")
    app.register_listener(start, "before_server_start")
    app.register_listener(drain, "before_server_stop")
    app.register_listener(stop, "after_server_stop")
