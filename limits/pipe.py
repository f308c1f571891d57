"""One pipelined connection for the script calls of the request path (a single Redis server).

redis-py's asyncio client spends most of a script call in its own machinery (taking a pooled
connection, retries, a timeout context, encoding each argument, giving the connection back):
about 150 µs of the gateway's CPU per admission in the bench profile, for 65-70 µs of Redis
time. Here a call is one C-packed command written to one connection, its reply matched in
order (hiredis parses), and a timer: what the limits backend needs, nothing else.

Failures read as redis-py's (ConnectionError, TimeoutError, ResponseError and its kinds), so
callers translate them once. A reply that does not come in time closes the connection: every
call still waiting fails (replies are matched by order, which a late one would break) and the
next call connects again. A caller that is cancelled leaves its reply to be read and dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis import exceptions as rexc
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

# Error replies that mean "this server cannot serve us now" (as redis-py reads them).
_KINDS: tuple[tuple[str, type[rexc.RedisError]], ...] = (
    ("NOSCRIPT", rexc.NoScriptError),
    ("LOADING", rexc.BusyLoadingError),
    ("READONLY", rexc.ReadOnlyError),
    ("MASTERDOWN", rexc.MasterDownError),
)


def _error(reply: rexc.ResponseError) -> Exception:
    text = str(reply)
    for prefix, kind in _KINDS:
        if text.startswith(prefix):
            return kind(text)
    return reply


class _Protocol(asyncio.Protocol):
    """Replies matched in order to the calls waiting for them."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(
            protocolError=rexc.InvalidResponse, replyError=rexc.ResponseError
        )
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                future = self.waiting.popleft()
                if future.done():  # its caller was cancelled: the reply is dropped
                    continue
                if isinstance(reply, rexc.ResponseError):
                    future.set_exception(_error(reply))
                else:
                    future.set_result(reply)
        except (rexc.InvalidResponse, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.fail(rexc.ConnectionError(f"bad reply from redis: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(rexc.ConnectionError("connection to redis lost"))

    def fail(self, error: Exception) -> None:
        """Close the connection; every call still waiting gets `error`."""
        if self.lost is None:
            self.lost = error
        if self.transport is not None:
            self.transport.close()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class ScriptPipe:
    """Commands over one connection to one Redis server, pipelined, reconnecting on need."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 2.0,
        connect_timeout: float = 1.0,
    ) -> None:
        self.address = (host, port)
        self.db, self.username, self.password = db, username, password
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def for_client(cls, client: Any) -> ScriptPipe | None:
        """A pipe to the server of a redis-py client over plain TCP; None for anything else
        (a cluster, TLS, a Unix socket: those keep redis-py)."""
        if not isinstance(client, Redis):
            return None
        pool = client.connection_pool
        if pool.connection_class is not Connection:
            return None
        kw = pool.connection_kwargs
        return cls(
            str(kw.get("host", "localhost")),
            int(kw.get("port", 6379)),
            db=int(kw.get("db") or 0),
            username=kw.get("username"),
            password=kw.get("password"),
            timeout=float(kw.get("socket_timeout") or 2.0),
            connect_timeout=float(kw.get("socket_connect_timeout") or 1.0),
        )

    def _live(self) -> _Protocol | None:
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return None
        if protocol.loop is not asyncio.get_running_loop():  # made on another event loop
            self._protocol = self._connecting = None
            return None
        return protocol

    async def _open(self) -> _Protocol:
        protocol = self._live()
        if protocol is not None:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            return self._live() or await self._connect()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_Protocol, *self.address), self.connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            raise rexc.ConnectionError(f"cannot connect to redis: {type(exc).__name__}") from exc
        hello: list[tuple[Any, ...]] = []
        if self.password:
            login = (self.username, self.password) if self.username else (self.password,)
            hello.append(("AUTH", *login))
        if self.db:
            hello.append(("SELECT", self.db))
        try:
            for command in hello:
                await asyncio.wait_for(self._call(protocol, command), self.timeout)
        except (TimeoutError, rexc.RedisError) as exc:
            protocol.fail(rexc.ConnectionError("redis refused the connection"))
            raise rexc.ConnectionError(f"redis refused the connection: {exc}") from exc
        self._protocol = protocol
        return protocol

    def _call(self, protocol: _Protocol, args: Sequence[Any]) -> asyncio.Future[Any]:
        assert protocol.transport is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(future)
        protocol.transport.write(hiredis.pack_command(tuple(args)))
        return future

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply (redis-py's exceptions on failure)."""
        protocol = await self._open()
        future = self._call(protocol, args)
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, protocol, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """EVALSHA, as redis-py's client takes it."""
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    async def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        """EVAL, as redis-py's client takes it."""
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    @staticmethod
    def _expire(protocol: _Protocol, future: asyncio.Future[Any]) -> None:
        if not future.done():
            protocol.fail(rexc.TimeoutError("redis did not answer in time"))

    async def aclose(self) -> None:
        """Close the connection (calls still waiting fail)."""
        if self._protocol is not None:
            self._protocol.fail(rexc.ConnectionError("closed"))
            self._protocol = None
