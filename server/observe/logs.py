"""Logging: loguru to stderr (JSON lines or text), Sanic's stdlib loggers routed through it."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message


class _Intercept(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _json_line(message: Message) -> None:
    """One compact JSON object per line: time, level, pid, message and bound context."""
    record = message.record
    line = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "pid": record["process"].id,
        "logger": record["name"],
        "message": record["message"],
        **record["extra"],
    }
    sys.stderr.write(orjson.dumps(line, default=str).decode() + "\n")


def setup_logging(fmt: str, level: str) -> None:
    """Configure this process's sinks (call in each worker, never at import time).

    `auto` writes readable text to a terminal and JSON lines to anything else.
    """
    logger.remove()
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    if fmt == "json":
        logger.add(_json_line, level=level, backtrace=False, diagnose=False)
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


class AccessLog:
    """The one access line per request: straight to stderr as JSON (no loguru round trip on
    the hot path), or through loguru as text on a terminal; off below INFO."""

    def __init__(self, fmt: str, level: str) -> None:
        if fmt == "auto":
            fmt = "text" if sys.stderr.isatty() else "json"
        self.json = fmt == "json"
        self.enabled = level.upper() in ("DEBUG", "INFO")
        self.pid = os.getpid()

    def write(self, message: str, fields: dict[str, object]) -> None:
        """Write one access line."""
        if not self.enabled:
            return
        if not self.json:
            logger.bind(**fields).info(message)
            return
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        line = {"time": now, "level": "INFO", "pid": self.pid, "logger": "access"}
        line |= {"message": message, **fields}
        sys.stderr.write(orjson.dumps(line, default=str).decode() + "\n")
