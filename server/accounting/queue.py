"""The audit queue in Redis as the writer reads it: one stream per shard, a consumer group.

Entries are appended by the limits backend (settle appends a request's event in the script
that settles its usage, record() XADDs a refusal's): field ``e`` is the event (event.py), and
each stream's byte counter grows by its length. The writer reads every stream through the
consumer group GROUP, acknowledges an entry only after its batch committed (and then deletes
it and takes its bytes off the counter, in one script per stream), claims entries a dead
consumer left pending, and moves what PostgreSQL refuses to the shard's dead-letter stream
(fields ``e``, ``why``, ``from``).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from limits import AnyRedis, KeySpace, run_script
from server.accounting.source import Entry, QueueStatus
from server.accounting.stream_reads import read_new, text

GROUP = "writers"
EVENT_SHARDS = 16
EVENT_FIELD = b"e"


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The keys of one audit shard: its stream, the stream's byte counter, its dead letters."""

    stream: str
    bytes: str
    dead: str


def shard_keys(namespace: str) -> list[ShardKeys]:
    """Every shard's keys, as limits names them (the streams settle and record append to).

    A shard's dead letters share its hash tag, so one script can move an entry (Cluster-safe).
    """
    return [
        ShardKeys(s.stream, s.bytes, s.dead_letter) for s in KeySpace(namespace).event_streams()
    ]


# KEYS: 1 stream, 2 its byte counter. ARGV: 1 group, then pairs (entry id, its size in bytes).
# Acknowledges and deletes each entry still pending; takes only those off the counter, so an
# entry acknowledged twice (a claim racing a slow writer) is subtracted once. Returns the bytes.
ACK_SCRIPT = """
local freed = 0
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    freed = freed + tonumber(ARGV[i + 1])
  end
end
if freed > 0 and redis.call('DECRBY', KEYS[2], freed) < 0 then
  redis.call('SET', KEYS[2], 0)
end
return freed
"""

# KEYS: 1 stream, 2 its byte counter, 3 its dead-letter stream. ARGV: 1 group, 2 entry id,
# 3 the event, 4 why. Copies the entry to the dead letters and acknowledges it, at once;
# an entry no longer pending (someone else handled it) is not copied. Returns 1 if moved.
DEAD_SCRIPT = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[3], '*', 'e', ARGV[3], 'why', ARGV[4], 'from', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('DECRBY', KEYS[2], #ARGV[3]) < 0 then redis.call('SET', KEYS[2], 0) end
return 1
"""


def consumer_name() -> str:
    """A name no other consumer has: host, process and a random part."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _entry(shard: int, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    """An entry as read; one without an event field is kept (as empty) to be dead-lettered."""
    return Entry(shard, text(entry_id), fields.get(EVENT_FIELD, b""))


class StreamSource:
    """The Redis streams of one namespace, read as one consumer of the group."""

    def __init__(
        self,
        redis: AnyRedis,
        namespace: str,
        *,
        consumer: str | None = None,
        claim_idle: float = 60.0,
        claim_every: float = 10.0,
        forget_idle: float = 3600.0,
    ) -> None:
        if redis.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the audit writer needs a Redis client that returns bytes")
        self.redis = redis
        self.shards = shard_keys(namespace)
        self.consumer = consumer or consumer_name()
        self.claim_idle_ms = int(claim_idle * 1000)
        self.claim_every = claim_every
        self.forget_idle_ms = int(forget_idle * 1000)
        self._next_claim = 0.0
        self._spare: list[Entry] = []  # read beyond a batch (one read covers every shard)
        self._next_forget = time.monotonic() + claim_every
        self._ack = redis.register_script(ACK_SCRIPT)
        self._dead = redis.register_script(DEAD_SCRIPT)

    async def prepare(self) -> None:
        """Create the consumer group on every stream (and the stream), where missing."""
        for shard in self.shards:
            try:
                await self.redis.xgroup_create(shard.stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def abandoned(self) -> list[Entry]:
        """Nothing: a consumer's name is new each start, so its old pending entries are claimed."""
        return []

    async def take(self, count: int, block: float) -> list[Entry]:
        """Entries left idle by another consumer (now and then), else new ones (waiting `block` s)."""
        try:
            return await self._take(count, block)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.prepare()  # the streams were lost (Redis restarted empty) or deleted
            return []

    async def _take(self, count: int, block: float) -> list[Entry]:
        if self._spare:
            batch, self._spare = self._spare[:count], self._spare[count:]
            return batch
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self.claim_every
            claimed = await self._claim(count)
            if claimed:
                self._next_claim = now  # more may be waiting: claim again next time
                return claimed
        if now >= self._next_forget:
            self._next_forget = now + max(self.claim_every, 60.0)
            await self._forget_idle_consumers()
        streams = [s.stream for s in self.shards]
        read = await read_new(self.redis, GROUP, self.consumer, streams, count, block)
        entries = [_entry(n, entry_id, fields) for n, entry_id, fields in read]
        self._spare = entries[count:]
        return entries[:count]

    async def _claim(self, count: int) -> list[Entry]:
        found: list[Entry] = []
        for n, shard in enumerate(self.shards):
            reply: Any = await self.redis.xautoclaim(
                shard.stream, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=count
            )
            found += [_entry(n, i, fields) for i, fields in reply[1] if fields is not None]
            if len(found) >= count:
                break
        return found

    async def _forget_idle_consumers(self) -> None:
        """Drop consumers of past processes that hold nothing (XINFO stays short)."""
        for shard in self.shards:
            for info in await self.redis.xinfo_consumers(shard.stream, GROUP):
                name = text(info["name"])
                idle = int(info["idle"])
                if name != self.consumer and not info["pending"] and idle >= self.forget_idle_ms:
                    await self.redis.xgroup_delconsumer(shard.stream, GROUP, name)

    async def touch(self, entries: Sequence[Entry]) -> None:
        """Reset the idle time of entries this consumer is still retrying (nobody claims them)."""
        for n, ids in _by_shard(entries).items():
            claimed: list[Any] = list(ids)
            await self.redis.xclaim(
                self.shards[n].stream, GROUP, self.consumer, 0, claimed, justid=True
            )

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Acknowledge committed entries: delete them and free their bytes."""
        sizes = {(e.shard, e.id): len(e.data) for e in entries}
        for n, ids in _by_shard(entries).items():
            shard = self.shards[n]
            args: list[str | int] = [GROUP]
            for entry_id in ids:
                args += [entry_id, sizes[(n, entry_id)]]
            await run_script(self.redis, self._ack, [shard.stream, shard.bytes], args)

    async def dead_letter(self, entry: Entry, why: str) -> None:
        """Move an entry PostgreSQL refused (or that is no event) to its shard's dead letters."""
        shard = self.shards[entry.shard]
        keys = [shard.stream, shard.bytes, shard.dead]
        await run_script(self.redis, self._dead, keys, [GROUP, entry.id, entry.data, why])

    async def status(self) -> QueueStatus:
        """The backlog, its bytes and age, and the dead letters, over every shard."""
        return await stream_status(self.redis, self.shards)


def _by_shard(entries: Sequence[Entry]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for e in entries:
        out.setdefault(e.shard, []).append(e.id)
    return out


async def stream_status(redis: AnyRedis, shards: Sequence[ShardKeys]) -> QueueStatus:
    """What the streams hold: events not yet written, their bytes, the oldest's age, dead letters.

    One pipeline (on a cluster: one round trip per node)."""
    pipe = redis.pipeline(transaction=False)
    for shard in shards:
        pipe.xlen(shard.stream)
        pipe.get(shard.bytes)
        pipe.xlen(shard.dead)
        pipe.xrange(shard.stream, count=1)
    replies = await pipe.execute()
    backlog = size = dead = 0
    oldest_ms: int | None = None
    for n in range(len(shards)):
        length, counter, dead_length, first = replies[4 * n : 4 * n + 4]
        backlog += int(length)
        size += max(int(counter or 0), 0)
        dead += int(dead_length)
        if first:
            ms = int(text(first[0][0]).split("-", 1)[0])
            oldest_ms = ms if oldest_ms is None else min(oldest_ms, ms)
    age = None if oldest_ms is None else max(time.time() - oldest_ms / 1000, 0.0)
    return QueueStatus(backlog=backlog, bytes=size, dead_letters=dead, oldest_age_s=age)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry set aside: where it is, why, and the event bytes."""

    shard: int
    id: str
    why: str
    origin: str  # the id it had in the events stream
    data: bytes


async def read_dead_letters(
    redis: AnyRedis, namespace: str, *, limit: int | None = None
) -> list[DeadLetter]:
    """Dead letters of every shard, newest first."""
    found: list[DeadLetter] = []
    for n, shard in enumerate(shard_keys(namespace)):
        entries: Any = await redis.xrevrange(shard.dead, count=limit)
        for entry_id, fields in entries:
            found.append(
                DeadLetter(
                    n,
                    text(entry_id),
                    text(fields.get(b"why", b"")),
                    text(fields.get(b"from", b"")),
                    fields.get(EVENT_FIELD, b""),
                )
            )
    found.sort(key=lambda d: tuple(int(p) for p in d.id.split("-")), reverse=True)
    return found if limit is None else found[:limit]
