"""The Redis clients the backend runs on (one server or a Redis Cluster), and script calls on them
(through a ScriptPipe where the server allows one).

Both kinds take the same calls here: a script call names keys of one hash slot, which a
cluster client sends to the node that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from redis import exceptions as rexc
from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript

from limits.pipe import ScriptPipe

AnyRedis: TypeAlias = Redis | RedisCluster

# redis-py's errors that mean "Redis cannot serve us now" (BusyLoadingError is a ConnectionError;
# a cluster adds a slot no node serves, a node that cannot be reached, a redirect loop)
UNAVAILABLE: tuple[type[Exception], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.ClusterError,
    rexc.RedisClusterException,
    rexc.TryAgainError,
    rexc.MasterDownError,
    rexc.ReadOnlyError,
    OSError,
)

# Any error a Redis call may raise: RedisClusterException is not a RedisError.
REDIS_ERRORS: tuple[type[Exception], ...] = (rexc.RedisError, rexc.RedisClusterException, OSError)


def is_cluster(client: AnyRedis) -> bool:
    """Whether the client speaks to a Redis Cluster."""
    return isinstance(client, RedisCluster)


async def run_script(
    client: AnyRedis | ScriptPipe, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    """EVALSHA; where the node lost its script cache (a restart, SCRIPT FLUSH), EVAL it there.

    EVAL caches the script on the node that ran it, in the same round trip, so the next
    EVALSHA finds it; unlike SCRIPT LOAD it goes only to the node of the keys' slot, and
    needs no other cluster node to answer.
    """
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except rexc.NoScriptError:
        body = script.script
        text = body if isinstance(body, str) else bytes(body).decode()
        return await client.eval(text, len(keys), *keys, *args)
