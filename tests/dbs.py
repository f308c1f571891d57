"""Test databases: one migrated PostgreSQL template per run, a fresh copy per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from config import Settings
from server.stores.database import migrate

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url.replace("postgresql://", "postgres://", 1))
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(
        _with_db(ADMIN_URL, "postgres").replace("postgres://", "postgresql://", 1)
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_template() -> str:
    """Create and migrate this run's template database; return its name."""
    name = f"nzgw_tmpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(migrate(Settings(database_url=_with_db(ADMIN_URL, name))))
    return name


def create_database(template: str) -> str:
    """A fresh, migrated database copied from the template; returns its URL."""
    name = f"nzgw_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return _with_db(ADMIN_URL, name)


def create_empty_database() -> str:
    """A fresh database with nothing in it."""
    name = f"nzgw_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return _with_db(ADMIN_URL, name)


def drop_database(url: str) -> None:
    """Drop a test database, disconnecting whoever is still on it."""
    name = urlsplit(url).path.lstrip("/")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
