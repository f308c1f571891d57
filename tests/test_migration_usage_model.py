"""Migration 2 (usage by model) on a ledger with rows, up and down, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aerich import Command

from server.stores.database import close_db, migrations_location, tortoise_config
from tests.server.admin.operator import query

USAGE_MODEL = "2_20261201210614_usage_by_model.py"


def _run(url: str, location: Path, step: str) -> list[str]:
    async def go() -> list[str]:
        command = Command(
            tortoise_config=tortoise_config(url), app="models", location=str(location)
        )
        await command.init()
        try:
            if step == "down":
                return await command.downgrade(version=2, delete=False)
            return await command.upgrade(run_in_transaction=True)
        finally:
            await close_db()

    return asyncio.run(go())


@pytest.fixture(params=["postgres", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        empty: str = request.getfixturevalue("pg_empty_url")
        return empty
    return f"sqlite://{tmp_path / 'ledger.sqlite3'}"


def test_rows_survive_the_usage_by_model_migration_both_ways(url: str, tmp_path: Path) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(migrations_location(url), location)
    later = location / "models" / USAGE_MODEL
    held = tmp_path / USAGE_MODEL
    later.rename(held)
    _run(url, location, "up")  # migrations 0 and 1
    query(
        url,
        "INSERT INTO tenants (name, status, log_prompts, prompt_ttl_days, created_at, "
        "updated_at) VALUES ('acme', 'active', false, 7, '2026-11-01', '2026-11-01')",
    )
    query(
        url,
        "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, status, created_at, "
        "updated_at) VALUES (1, 'k', 'nz_abcdefgh', 'x', 'active', '2026-11-01', '2026-11-01')",
    )
    query(
        url,
        "INSERT INTO usage_daily (tenant_id, key_id, day, requests, prompt_tokens, "
        "completion_tokens) VALUES (1, 1, '2026-11-30', 3, 200, 100)",
    )
    held.rename(later)
    assert _run(url, location, "up") == [USAGE_MODEL]
    assert query(url, "SELECT model, requests FROM usage_daily") == [("", 3)]
    query(
        url,
        "INSERT INTO usage_daily (tenant_id, key_id, day, model, requests, "
        "prompt_tokens, completion_tokens) VALUES (1, 1, '2026-11-30', 'llama3', 2, 20, 10)",
    )
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        query(
            url,
            "INSERT INTO usage_daily (tenant_id, key_id, day, model, requests, "
            "prompt_tokens, completion_tokens) VALUES (1, 1, '2026-11-30', 'llama3', 1, 1, 1)",
        )
    assert _run(url, location, "down") == [USAGE_MODEL]
    rows = query(url, "SELECT requests, prompt_tokens, completion_tokens FROM usage_daily")
    assert rows == [(5, 220, 110)]  # the per-model rows of a key and day merged back
