"""The audit queue's state for /readyz detail and /metrics: backlog, bytes, age, dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.accounting.queue import shard_keys, stream_status

if TYPE_CHECKING:
    from limits import AnyRedis
    from server.accounting.recorder import Recorder


async def queue_status(
    *, redis: AnyRedis | None, namespace: str, local: Recorder | None = None
) -> dict[str, object]:
    """The audit queue as this worker sees it.

    With Redis: the streams of the namespace (shared by every replica), and under "local" the
    worker's in-process fallback queue, if given. Without: the in-process queue and its writer.
    Keys: backlog (events not yet written), bytes, oldest_age_s, dead_letters. Raises the
    Redis client's error when Redis cannot be reached.
    """
    if redis is None:
        if local is None:
            return {"queue": "none"}
        return {"queue": "memory", **(await local.status())}
    shared = (await stream_status(redis, shard_keys(namespace))).as_dict()
    out: dict[str, object] = {"queue": "redis", **shared}
    if local is not None:
        out["local"] = await local.status()
    return out
