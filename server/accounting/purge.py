"""Deleting expired prompt logs in bounded batches, so no purge holds a long lock."""

from __future__ import annotations

from datetime import datetime

from models import PromptLog

BATCH = 1000
MAX_BATCHES = 10


async def purge_expired_prompts(
    now: datetime, *, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> int:
    """Delete prompt logs whose TTL has passed, at most batch × max_batches rows; return the count."""
    removed = 0
    for _ in range(max_batches):
        ids = await PromptLog.filter(expires_at__lte=now).limit(batch).values_list("id", flat=True)
        if not ids:
            break
        removed += await PromptLog.filter(id__in=list(ids)).delete()
        if len(ids) < batch:
            break
    return removed
