"""Redis key names: one shard tag per tenant, shared with its audit stream; ids escaped."""

from __future__ import annotations

import zlib

from limits import EVENT_SHARDS, KeySpace, shard_of


def test_every_key_of_a_call_shares_the_tenant_shard_tag() -> None:
    space = KeySpace("nzgw")
    tag = f"nzgw:{{s:{shard_of('t1')}}}:"
    for keys in (
        space.admit("t1", "k1"),
        space.extend("t1", "k1"),
        space.heads("t1"),
        space.settle("t1", "k1"),
    ):
        assert all(k.startswith(tag) for k in keys)
        assert len(set(keys)) == len(keys)
    keys = space.settle("t1", "k1")
    t = f"{tag}t:t1"
    assert keys == [
        f"{t}:heads",
        f"{t}:k:k1:ring",
        f"{t}:ring",
        f"{tag}events",
        f"{tag}events:bytes",
    ]
    assert space.admit("t1", "k1") == [*keys[:3], f"{tag}events:bytes"]
    assert space.record("t1") == keys[3:]


def test_shards_are_stable_and_listed() -> None:
    # CRC-32, not hash(): every worker and replica must agree
    assert shard_of("t1") == zlib.crc32(b"t1") % 16 == 7
    assert {shard_of(str(i)) for i in range(1000)} == set(range(EVENT_SHARDS))
    streams = KeySpace("ns").event_streams()
    assert [s.shard for s in streams] == list(range(16))
    assert streams[3].stream == "ns:{s:3}:events"
    assert streams[3].bytes == "ns:{s:3}:events:bytes"
    assert streams[3].dead_letter == "ns:{s:3}:events:dead"


def test_ids_cannot_move_the_hash_tag_or_collide() -> None:
    space = KeySpace("ns")
    n = shard_of("a}b:{c")
    heads, ring, _ = space.tenant("a}b:{c", "x:t")
    assert heads == f"ns:{{s:{n}}}:t:a%7Db%3A%7Bc:heads"
    assert ring == f"ns:{{s:{n}}}:t:a%7Db%3A%7Bc:k:x%3At:ring"
    assert space.key_field("x:t") == "k:x%3At"
    assert "t" not in {space.key_field(k) for k in ("", "t", ":t")}  # "t" is the tenant's
    assert space.key_field("a") != space.key_field("a:")
