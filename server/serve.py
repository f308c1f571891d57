"""`neuronetz-gateway serve`: migrate once in the main process, then run N Sanic workers."""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

from loguru import logger
from sanic import Sanic
from sanic.worker.loader import AppLoader

from config import Settings, SettingsError
from config.settings import export_metrics_dir
from server.app import create_app
from server.http.connection import GatewayProtocol
from server.observe.logs import setup_logging
from server.observe.metrics import fresh_multiproc_dir, merged_registry, serve_exposition
from server.stores.database import run_migrations


def resolve(
    settings: Settings, host: str | None, port: int | None, workers: int | None
) -> Settings:
    """Apply command-line overrides and check them like environment values."""
    changes: dict[str, object] = {}
    if host is not None:
        changes["host"] = str(host)
    if port is not None:
        if not isinstance(port, int) or not 0 < port < 65536:
            raise SettingsError(f"--port={port!r} is invalid: expected a port number 1-65535")
        changes["port"] = port
    if workers is not None:
        if not isinstance(workers, int) or workers <= 0:
            raise SettingsError(f"--workers={workers!r} is invalid: expected a positive integer")
        changes["workers"] = workers
    resolved = settings.with_(**changes)
    if resolved.workers > 1 and resolved.redis_url is None:
        raise SettingsError(
            f"--workers={resolved.workers} needs REDIS_URL: without Redis, limits and key "
            "revocation live in one process, so only one worker can run"
        )
    return resolved


def _prepare_metrics(settings: Settings) -> Settings:
    """Several workers: one multiprocess directory for all; the exposition served from here."""
    if settings.workers == 1:
        return settings  # the one worker keeps its figures and serves METRICS_PORT itself
    default = Path(tempfile.gettempdir()) / f"nzgw-metrics-{settings.port}"
    directory = fresh_multiproc_dir(Path(settings.metrics_dir) if settings.metrics_dir else default)
    export_metrics_dir(directory)
    if settings.metrics_port:
        host = settings.metrics_host or settings.host
        serve_exposition(settings.metrics_port, host, merged_registry())
    return settings.with_(metrics_dir=directory)


def run(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    migrate: bool = True,
) -> None:
    """Serve until stopped (SIGINT/SIGTERM drain gracefully)."""
    settings = resolve(settings, host, port, workers)
    setup_logging(settings.log_format, settings.log_level)
    settings = _prepare_metrics(settings)
    if migrate:
        applied = run_migrations(settings)
        logger.info("migrations applied: {}", applied or "none pending")
    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        motd=False,
        single_process=settings.workers == 1,
        protocol=GatewayProtocol,
    )
    logger.info(
        "serving on http://{}:{} with {} worker(s)", settings.host, settings.port, settings.workers
    )
    if settings.workers == 1:
        Sanic.serve_single(primary=app)  # no manager process in between
    else:
        Sanic.serve(primary=app, app_loader=loader)
