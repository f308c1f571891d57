"""Redis key names: every key of a tenant, and the audit stream it feeds, share one shard tag."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from urllib.parse import quote

EVENT_SHARDS = 16


def _part(value: str) -> str:
    # ids normally pass through unchanged; ':', '{' and '}' are escaped so no id can
    # move the hash tag or collide with another scope's keys
    return quote(value, safe="-_.~@+=!$&*()")


def shard_of(value: str) -> int:
    """The shard (0 .. EVENT_SHARDS - 1) of a tenant id or of a request id: CRC-32, stable."""
    return zlib.crc32(value.encode("utf-8", "surrogatepass")) % EVENT_SHARDS


@dataclass(frozen=True, slots=True)
class EventStream:
    """The keys of one audit shard: the stream, its byte counter, the writer's dead letters."""

    shard: int
    stream: str  # XADD <stream> * e <event bytes>, one entry per event
    bytes: str  # INCRBY len(event) on append; the writer DECRBYs what it acknowledged
    dead_letter: str  # reserved for the writer (issue 10): rows PostgreSQL refused


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds the key names of one namespace.

    A tenant's keys carry the hash tag ``{s:<n>}`` with n = shard_of(tenant_id), so every
    script touches one Redis Cluster slot, and the audit stream it appends to is in that slot
    too. With ``<t>`` = ``<ns>:{s:<n>}:t:<tenant>``:

        <t>:heads        hash  "t" (the tenant scope), "k:<key>" (a key scope) -> the scope's
                               head: 17 doubles packed (lua/common.lua: budget counters, tokens
                               and requests in flight, the rpm and tpm sums and current second);
                               "=<id>" -> "<tokens> <expiry ms> k:<key>": an open reservation,
                               also its concurrency lease; "~<id>" -> expiry ms of the
                               tombstone of one that lapsed unsettled (settle still charges it)
        <t>:ring         hash  the tenant's rpm and tpm buckets of the minute: r<sec>, t<sec>
        <t>:k:<key>:ring hash  the same for a key

        <ns>:{s:<n>}:events        stream  one entry per event, field "e" = the event bytes
        <ns>:{s:<n>}:events:bytes  int     bytes appended and not yet acked by the writer
        <ns>:{s:<n>}:events:dead   stream  dead letters of the writer

    Nothing here grows with the number of requests: a ring holds at most 60 seconds per
    window, ``heads`` one field per scope, one per request in flight and one per lapse of
    the last LAPSE_GRACE_S.
    """

    namespace: str

    def shard_tag(self, shard: int) -> str:
        """``<ns>:{s:<n>}``: the prefix of every key of shard ``n``."""
        return f"{self.namespace}:{{s:{shard}}}"

    def _tenant(self, tenant_id: str) -> str:
        return f"{self.shard_tag(shard_of(tenant_id))}:t:{_part(tenant_id)}"

    def tenant(self, tenant_id: str, key_id: str) -> list[str]:
        """heads, the key's ring, the tenant's ring: the state a script reads."""
        base = self._tenant(tenant_id)
        return [f"{base}:heads", f"{base}:k:{_part(key_id)}:ring", f"{base}:ring"]

    @staticmethod
    def key_field(key_id: str) -> str:
        """The field of a key scope's head in its tenant's ``heads`` hash."""
        return f"k:{_part(key_id)}"

    def events(self, shard: int) -> EventStream:
        """The audit stream keys of one shard."""
        tag = self.shard_tag(shard)
        return EventStream(shard, f"{tag}:events", f"{tag}:events:bytes", f"{tag}:events:dead")

    def event_streams(self) -> list[EventStream]:
        """Every audit stream, in shard order: the writer reads exactly these."""
        return [self.events(n) for n in range(EVENT_SHARDS)]

    def admit(self, tenant_id: str, key_id: str) -> list[str]:
        """KEYS of admit.lua."""
        return [*self.tenant(tenant_id, key_id), self.events(shard_of(tenant_id)).bytes]

    def extend(self, tenant_id: str, key_id: str) -> list[str]:
        """KEYS of extend.lua."""
        return self.tenant(tenant_id, key_id)

    def heads(self, tenant_id: str) -> list[str]:
        """KEYS of refresh.lua, seed.lua and usage.lua: the tenant's heads."""
        return [f"{self._tenant(tenant_id)}:heads"]

    def settle(self, tenant_id: str, key_id: str) -> list[str]:
        """KEYS of settle.lua."""
        events = self.events(shard_of(tenant_id))
        return [*self.tenant(tenant_id, key_id), events.stream, events.bytes]

    def record(self, shard_key: str) -> list[str]:
        """KEYS of record.lua."""
        events = self.events(shard_of(shard_key))
        return [events.stream, events.bytes]
