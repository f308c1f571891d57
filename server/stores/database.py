"""Database wiring: the Tortoise config, connecting, and applying aerich migrations."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise

from config import Settings, SettingsError

MIGRATIONS_ROOT = Path(__file__).resolve().parents[2] / "migrations"  # beside server/
_LOCK_ID = int.from_bytes(hashlib.sha256(b"neuronetz-gateway:migrate").digest()[:7], "big")


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The Tortoise config dict for `database_url`, with aerich's own model registered."""
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {"models": ["models", "aerich.models"], "default_connection": "default"}
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def migrations_location(database_url: str) -> Path:
    """Where the migrations for this database's dialect live."""
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgres"
    location = MIGRATIONS_ROOT / dialect
    if not location.is_dir():  # a packaging mistake must not look like "nothing to apply"
        raise RuntimeError(f"the {dialect} migrations are missing (looked in {location})")
    return location


def ensure_sqlite_file(database_url: str) -> None:
    """Create a SQLite file mode 0600 (its -wal and -shm files follow its mode) and open it.

    Opening first also turns an unusable path into a clear error: Tortoise hangs on one.
    """
    path = database_url.removeprefix("sqlite://").split("?", 1)[0]
    if not database_url.startswith("sqlite://") or not path or path == ":memory:":
        return
    try:
        if not os.path.exists(path):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        sqlite3.connect(path).close()
    except (OSError, sqlite3.Error) as exc:
        raise SettingsError(
            f"DATABASE_URL: cannot open the SQLite file {path} ({type(exc).__name__}: {exc})"
        ) from exc


async def init_db(settings: Settings) -> None:
    """Open the connection pool for this process."""
    ensure_sqlite_file(settings.database_url)
    await Tortoise.init(config=tortoise_config(settings.database_url), _enable_global_fallback=True)


async def close_db() -> None:
    """Close every connection of this process and forget the ORM context."""
    await Tortoise.close_connections()


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[None]:
    """Connect for the duration of a block (the CLI's commands use this)."""
    await init_db(settings)
    try:
        yield
    finally:
        await close_db()


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations under a PostgreSQL advisory lock; return what was applied."""
    from aerich import Command

    ensure_sqlite_file(settings.database_url)
    location = migrations_location(settings.database_url)
    command = Command(
        tortoise_config=tortoise_config(settings.database_url),
        app="models",
        location=str(location),
    )
    async with _advisory_lock(settings):
        await command.init()
        applied: list[str] = await command.upgrade(run_in_transaction=True)
    await close_db()
    return applied


@asynccontextmanager
async def _advisory_lock(settings: Settings) -> AsyncIterator[None]:
    if not settings.is_postgres:
        yield
        return
    import asyncpg

    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    finally:
        await conn.close()


def run_migrations(settings: Settings) -> list[str]:
    """Synchronous wrapper for the CLI and the server's main process."""
    return asyncio.run(migrate(settings))
