"""Expired prompt logs are purged in bounded batches; live ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config import Settings
from models import PromptLog
from server.accounting.purge import purge_expired_prompts
from server.stores.database import database


async def test_only_expired_prompt_logs_are_purged_in_batches(settings: Settings) -> None:
    now = datetime.now(UTC)
    async with database(settings):
        await PromptLog.bulk_create(
            [
                PromptLog(
                    request_id=f"old{i}",
                    key_id=1,
                    request_body="{}",
                    response_text="x",
                    expires_at=now - timedelta(seconds=1),
                )
                for i in range(25)
            ]
            + [
                PromptLog(
                    request_id=f"new{i}",
                    key_id=1,
                    request_body="{}",
                    response_text="x",
                    expires_at=now + timedelta(days=1),
                )
                for i in range(5)
            ]
        )
        assert await purge_expired_prompts(now, batch=10, max_batches=2) == 20  # bounded
        assert await purge_expired_prompts(now, batch=10, max_batches=2) == 5
        left = await PromptLog.all().values_list("request_id", flat=True)
        assert sorted(left) == [f"new{i}" for i in range(5)]
