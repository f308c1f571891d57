"""Redis key names: one hash tag per tenant, ids escaped."""

from __future__ import annotations

from limits.keyspace import KeySpace


def test_every_key_of_an_admission_shares_the_tenant_hash_tag() -> None:
    space = KeySpace("nzgw")
    for keys in (
        space.admit("t1", "k1", "2026-11-26", "2026-11"),
        space.settle("t1", "k1", "2026-11-26", "2026-11"),
        space.seed("t1", "k1", "2026-11-26", "2026-11"),
        space.usage("t1", "k1", "2026-11-26", "2026-11"),
    ):
        assert all(k.startswith("nzgw:{t:t1}:") for k in keys)
        assert len(set(keys)) == len(keys)
    keys = space.admit("t1", "k1", "2026-11-26", "2026-11")
    assert keys[0] == "nzgw:{t:t1}:k:k1:rpm" and keys[9] == "nzgw:{t:t1}:t:rpm"
    assert "nzgw:{t:t1}:k:k1:d:2026-11-26" in keys and "nzgw:{t:t1}:t:m:2026-11" in keys


def test_ids_cannot_move_the_hash_tag_or_collide() -> None:
    space = KeySpace("ns")
    key_scope, tenant_scope = space.scopes("a}b:{c", "x:t")
    assert key_scope == "ns:{t:a%7Db%3A%7Bc}:k:x%3At"
    assert tenant_scope == "ns:{t:a%7Db%3A%7Bc}:t"
    assert space.scopes("550e8400-e29b-41d4-a716-446655440000", "42")[1] == (
        "ns:{t:550e8400-e29b-41d4-a716-446655440000}:t"
    )
