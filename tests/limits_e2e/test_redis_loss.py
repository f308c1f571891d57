"""Issue 4 end to end: Redis flushed or stopped — budgets survive, the gateway fails closed and
comes back by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key
from tests.limits_e2e.conftest import PrivateRedis, env_for, generate_many, usage


@pytest.fixture
def gateway(database_url: str, private_redis: PrivateRedis, fake: FakeOllama) -> Iterator[Gateway]:
    env = env_for(database_url, private_redis.url, fake)
    with Gateway(env, workers=2) as gw:
        yield gw


def _one(gw: Gateway, key: str) -> httpx.Response:
    return asyncio.run(generate_many([gw.url], key, 1, num_predict=20))[0]


def test_flushall_resets_no_budget(gateway: Gateway, private_redis: PrivateRedis) -> None:
    env = gateway.env
    cli(env, "create-tenant", "--name", "acme")
    spent = create_key(env, "acme", "spent", "--daily-tokens", "300")
    partial = create_key(env, "acme", "partial", "--total-tokens", "100000")
    while _one(gateway, spent).status_code == 200:
        pass
    for _ in range(3):
        assert _one(gateway, partial).status_code == 200
    before = usage(gateway.url, partial)["usage"]["key"]["total"]
    time.sleep(1.5)  # the ledger is written in batches, once a second
    assert private_redis.cmd("FLUSHALL") == "OK"
    r = _one(gateway, spent)
    assert r.status_code == 429 and r.headers["x-gateway-limit"] == "key:daily_tokens"
    assert usage(gateway.url, partial)["usage"]["key"]["total"] == before
    assert _one(gateway, partial).status_code == 200


def test_redis_down_fails_closed_on_every_worker_and_recovers(
    gateway: Gateway, private_redis: PrivateRedis
) -> None:
    env = gateway.env
    cli(env, "create-tenant", "--name", "acme", "--rpm", "1000")
    key = create_key(env, "acme", "k")
    assert _one(gateway, key).status_code == 200
    private_redis.stop()
    stopped = time.monotonic()
    seen: dict[str, set[int]] = {}
    deadline = stopped + 20
    while time.monotonic() < deadline and (len(seen) < 2 or sum(map(len, seen.values())) < 2):
        r = httpx.post(
            gateway.url + "/api/generate",
            timeout=10,
            json={"model": "llama3.2", "prompt": "hi", "stream": False},
            headers={"Authorization": f"Bearer {key}"},
        )
        seen.setdefault(r.headers["x-gateway-worker"], set()).add(r.status_code)
        assert r.status_code == 503, r.text
        assert "retry-after" in r.headers
        assert time.monotonic() - stopped < 1.0 or r.status_code == 503
    assert len(seen) == 2 and all(s == {503} for s in seen.values()), seen
    first = httpx.post(
        gateway.url + "/v1/chat/completions",
        timeout=10,
        json={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert first.status_code == 503 and first.json()["error"]["code"] == "service_unavailable"
    assert httpx.get(gateway.url + "/readyz", timeout=10).status_code == 503

    private_redis.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _one(gateway, key).status_code == 200:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("service did not come back after Redis returned")
    assert httpx.get(gateway.url + "/readyz", timeout=10).status_code == 200
