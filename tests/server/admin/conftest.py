"""The operator fixture: the CLI on a migrated PostgreSQL database with Redis, or on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.admin.operator import REDIS_URL, Operator, base_env


@pytest.fixture(params=["postgres", "sqlite"])
def operator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Operator, str]]:
    """An operator on a migrated PostgreSQL database with Redis, or a fresh SQLite file."""
    if request.param == "postgres":
        url = request.getfixturevalue("database_url")
        namespace = request.getfixturevalue("redis_namespace")
        env = base_env(DATABASE_URL=url, REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
    else:
        url = f"sqlite://{tmp_path / 'fresh.sqlite3'}"
        env = base_env(DATABASE_URL=url)
    yield Operator(env, tmp_path), url
