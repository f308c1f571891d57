"""Logging: loguru to stderr (JSON lines or text), Sanic's stdlib loggers routed through it."""

from __future__ import annotations

import logging
import sys

from loguru import logger


class _Intercept(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(fmt: str, level: str) -> None:
    """Configure this process's sinks (call in each worker, never at import time)."""
    logger.remove()
    if fmt == "json":
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(
            sys.stderr,
            level=level,
            backtrace=False,
            diagnose=False,
            format="{time:YYYY-MM-DDTHH:mm:ss.SSSZ} {level:<7} pid={process} {message} {extra}",
        )
    handler = _Intercept()
    for name in ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets"):
        std = logging.getLogger(name)
        std.handlers = [handler]
        std.propagate = False
        std.setLevel(logging.INFO if name != "sanic.access" else logging.WARNING)
