"""The committed migrations match the models and apply to empty PostgreSQL and SQLite databases."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from aerich import Command

from config import Settings
from server.stores.database import close_db, migrate, migrations_location, tortoise_config


async def _pending_changes(database_url: str, location: Path) -> str | None:
    """Ask aerich for a new migration from the models; None means nothing changed."""
    command = Command(
        tortoise_config=tortoise_config(database_url), app="models", location=str(location)
    )
    await command.init()
    try:
        return await command.migrate("check", no_input=True)
    finally:
        await close_db()


def _check(database_url: str, tmp_path: Path) -> None:
    applied = asyncio.run(migrate(Settings(database_url=database_url)))
    assert applied, "an empty database should receive the initial migration"
    assert asyncio.run(migrate(Settings(database_url=database_url))) == []  # idempotent
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_location(database_url), copy)
    before = sorted(p.name for p in (copy / "models").iterdir())
    result = asyncio.run(_pending_changes(database_url, copy))
    after = sorted(p.name for p in (copy / "models").iterdir())
    assert result in (None, "") and after == before, f"models changed without a migration: {result}"


def test_postgres_migrations_apply_and_match_models(pg_empty_url: str, tmp_path: Path) -> None:
    _check(pg_empty_url, tmp_path)


def test_sqlite_migrations_apply_and_match_models(tmp_path: Path) -> None:
    _check(f"sqlite://{tmp_path / 'gateway.sqlite3'}", tmp_path)
