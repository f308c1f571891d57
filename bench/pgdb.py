"""A private PostgreSQL database for the run, dropped at the end."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.procs import BenchError, Supervisor


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(admin_url: str, sql: str) -> str:
    conn = await asyncio.wait_for(asyncpg.connect(_with_db(admin_url, "postgres")), 10)
    try:
        await conn.execute(sql)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def create_database(sup: Supervisor, admin_url: str) -> tuple[str, str]:
    """Create `nzgw_bench_<random>`, drop it (forcefully) at exit; return its URL and the version."""
    name = f"nzgw_bench_{uuid.uuid4().hex[:12]}"
    try:
        version = asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BenchError(
            f"PostgreSQL at {urlsplit(admin_url).hostname}:{urlsplit(admin_url).port or 5432} "
            f"is not usable ({exc}); start it or set DATABASE_URL to an admin URL"
        ) from exc

    def drop() -> None:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    sup.on_exit(drop)
    return _with_db(admin_url, name).replace("postgresql://", "postgres://", 1), version
