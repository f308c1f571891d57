"""ScriptPipe against the real Redis: replies matched in order, failures as redis-py's, recovery."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import uvloop
from redis import exceptions as rexc
from redis.asyncio import Redis

from limits.pipe import ScriptPipe


@pytest.fixture
async def pipe(redis_url: str) -> ScriptPipe:
    made = ScriptPipe.for_client(Redis.from_url(redis_url))
    assert made is not None
    return made


def test_only_a_plain_tcp_server_gets_a_pipe(redis_url: str) -> None:
    assert ScriptPipe.for_client(Redis.from_url(redis_url)) is not None
    assert ScriptPipe.for_client(Redis.from_url("unix:///tmp/redis.sock")) is None
    assert ScriptPipe.for_client(Redis.from_url("rediss://127.0.0.1:6379/0")) is None
    assert ScriptPipe.for_client(object()) is None


async def test_concurrent_calls_each_get_their_own_reply(pipe: ScriptPipe) -> None:
    replies = await asyncio.gather(*(pipe.execute("ECHO", f"n{i}") for i in range(500)))
    assert replies == [f"n{i}".encode() for i in range(500)]
    await pipe.aclose()


async def test_a_cancelled_call_leaves_the_next_reply_to_its_own_caller(pipe: ScriptPipe) -> None:
    key = f"nzgw-test-{uuid.uuid4().hex}"
    slow = asyncio.create_task(pipe.execute("BLPOP", key, 0.3))  # waits 0.3 s on the server
    await asyncio.sleep(0.05)
    mine = asyncio.create_task(pipe.execute("ECHO", "mine"))
    slow.cancel()
    assert await mine == b"mine"
    assert await pipe.execute("ECHO", "after") == b"after"
    await pipe.aclose()


async def test_error_replies_read_as_redis_py_reads_them(pipe: ScriptPipe) -> None:
    with pytest.raises(rexc.NoScriptError):
        await pipe.execute("EVALSHA", "0" * 40, 0)
    with pytest.raises(rexc.ResponseError, match="in flight"):
        await pipe.execute("EVAL", "return redis.error_reply('request id already in flight')", 0)
    assert await pipe.execute("EVAL", "return {1, 'two', 3}", 0) == [1, b"two", 3]
    await pipe.aclose()


async def test_a_late_reply_fails_the_call_and_the_next_call_reconnects(redis_url: str) -> None:
    pipe = ScriptPipe.for_client(Redis.from_url(redis_url, socket_timeout=0.2))
    assert pipe is not None and pipe.timeout == 0.2
    key = f"nzgw-test-{uuid.uuid4().hex}"
    waiting = [pipe.execute("BLPOP", key, 2), pipe.execute("ECHO", "queued behind it")]
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(r) for r in results] == [rexc.TimeoutError, rexc.TimeoutError]
    assert await pipe.execute("ECHO", "again") == b"again"
    await pipe.aclose()


async def test_a_killed_connection_is_replaced(pipe: ScriptPipe, redis_url: str) -> None:
    mine = await pipe.execute("CLIENT", "ID")
    admin = Redis.from_url(redis_url)
    assert await admin.execute_command("CLIENT", "KILL", "ID", mine) == 1
    await admin.aclose()
    await asyncio.sleep(0.1)  # the loop sees the connection closed
    assert await pipe.execute("ECHO", "back") == b"back"
    await pipe.aclose()


async def test_the_database_of_the_url_is_selected(redis_url: str) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"
    pipe = ScriptPipe.for_client(Redis.from_url(url))
    assert pipe is not None and pipe.db == 5
    key = f"nzgw-test-{uuid.uuid4().hex}"
    await pipe.execute("SET", key, "in five", "EX", 60)
    other = Redis.from_url(url)
    assert await other.get(key) == b"in five"
    await other.delete(key)
    await other.aclose()
    await pipe.aclose()


async def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pipe = ScriptPipe("127.0.0.1", port, connect_timeout=0.5)
    with pytest.raises(rexc.ConnectionError):
        await pipe.execute("PING")


def test_under_uvloop_as_the_gateway_runs(redis_url: str) -> None:
    async def calls() -> list[bytes]:
        pipe = ScriptPipe.for_client(Redis.from_url(redis_url))
        assert pipe is not None
        try:
            return list(await asyncio.gather(*(pipe.execute("ECHO", str(i)) for i in range(50))))
        finally:
            await pipe.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(calls()) == [str(i).encode() for i in range(50)]
