"""Routing by load through real gateways (2 workers each) and two real fake Ollamas.

Every request here is slow (tokens x pace_ms), so the requests of a burst are all in flight at
once; counts are read from what each fake received.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key
from tests.routes.conftest import make_env, relayed

BODY = {"model": "llama3.2", "prompt": "Why is the sky blue?", "stream": False}
PATH = "/api/generate"
SLOW = {"tokens": 5, "pace_ms": 300}  # about 1.5 s a request


@dataclass
class Fakes:
    """Two identical fakes and the key every gateway of this module accepts."""

    a: FakeOllama
    b: FakeOllama
    database: str
    key: str


@pytest.fixture(scope="module")
def module_fakes(package_db: str) -> Iterator[Fakes]:
    with FakeOllama(**SLOW) as a, FakeOllama(**SLOW) as b:
        env = make_env(package_db, [{"name": "a", "url": a.url}])
        tenant = f"load-{uuid.uuid4().hex[:8]}"
        cli(env, "create-tenant", "--name", tenant)
        yield Fakes(a, b, package_db, create_key(env, tenant, "k"))


@pytest.fixture
def fakes(module_fakes: Fakes) -> Fakes:
    for fake in (module_fakes.a, module_fakes.b):
        fake.reset()
    return module_fakes


@contextmanager
def gateway(fakes: Fakes, *entries: dict[str, Any], **env: str) -> Iterator[Gateway]:
    """A 2-worker gateway whose backends are `entries` ("url" filled in from the fake named)."""
    urls = {"a": fakes.a.url, "b": fakes.b.url}
    backends = [{"url": urls[e["name"]], **e} for e in entries]
    values = make_env(fakes.database, backends) | env
    with Gateway(values, workers=2) as gw:
        yield gw


def burst(gw: Gateway, key: str, n: int) -> list[httpx.Response]:
    """`n` requests at once (one connection each), all answered."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=gw.url, headers=headers, limits=limits, timeout=120
        ) as http:
            return list(await asyncio.gather(*(http.post(PATH, json=BODY) for _ in range(n))))

    return asyncio.run(run())


def served(fake: FakeOllama) -> int:
    """How many generations the fake answered (its 503 busy answers aside)."""
    return len(
        [r for r in relayed(fake, PATH) if r.get("decoded", {}).get("outcome") not in ("busy",)]
    )


def share(fakes: Fakes) -> float:
    a, b = served(fakes.a), served(fakes.b)
    return a / (a + b)


def test_equal_weights_in_one_group_split_evenly(fakes: Fakes) -> None:
    with gateway(fakes, {"name": "a", "group": 0}, {"name": "b", "group": 0}) as gw:
        answers = burst(gw, fakes.key, 200)
    assert [r.status_code for r in answers] == [200] * 200
    assert served(fakes.a) + served(fakes.b) == 200
    assert 0.45 <= share(fakes) <= 0.55, (served(fakes.a), served(fakes.b))


def test_weights_three_to_one_split_three_to_one(fakes: Fakes) -> None:
    entries = ({"name": "a", "group": 0, "weight": 3}, {"name": "b", "group": 0, "weight": 1})
    with gateway(fakes, *entries) as gw:
        answers = burst(gw, fakes.key, 200)
    assert [r.status_code for r in answers] == [200] * 200
    assert 0.70 <= share(fakes) <= 0.80, (served(fakes.a), served(fakes.b))


def test_a_backend_at_its_max_concurrent_gets_no_more(fakes: Fakes) -> None:
    fakes.a.configure(tokens=20)  # about 6 s: time for list-backends while they run
    fakes.b.configure(tokens=20)
    entries = ({"name": "a", "group": 0, "max_concurrent": 5}, {"name": "b", "group": 0})
    with gateway(fakes, *entries) as gw, ThreadPoolExecutor(1) as pool:
        running = pool.submit(burst, gw, fakes.key, 60)
        time.sleep(1.0)
        rows = {r["name"]: r for r in json.loads(cli(gw.env, "list-backends", "--json").stdout)}
        answers = running.result()
        after = {r["name"]: r for r in json.loads(cli(gw.env, "list-backends", "--json").stdout)}
    assert [r.status_code for r in answers] == [200] * 60
    assert fakes.a.load()["inference_peak"] == 5 <= served(fakes.a)  # full, never over
    assert served(fakes.b) == 60 - served(fakes.a)
    a, b = rows["a"], rows["b"]
    assert (a["group"], a["weight"], a["max_concurrent"], b["max_concurrent"]) == (0, 1.0, 5, None)
    assert 0 < a["in_flight"] <= 5 and b["in_flight"] > 0
    assert after["a"]["in_flight"] == after["b"]["in_flight"] == 0


def test_a_busy_backend_sends_its_requests_to_the_other(fakes: Fakes) -> None:
    fakes.a.configure(fault="busy")
    with gateway(fakes, {"name": "a", "group": 0}, {"name": "b", "group": 0}) as gw:
        answers = burst(gw, fakes.key, 40)
        assert [r.status_code for r in answers] == [200] * 40
        assert served(fakes.a) == 0 and served(fakes.b) == 40
        assert fakes.a.load()["rejected"] >= 10  # tried about half the time: it said busy
        fakes.a.configure(fault=None)
        again = burst(gw, fakes.key, 20)  # well inside a cool-down (10 s), had it been taken out
    assert [r.status_code for r in again] == [200] * 20
    assert served(fakes.a) >= 5


def test_priority_tiers_hold_until_the_higher_is_full(fakes: Fakes) -> None:
    fakes.a.configure(tokens=10)  # about 3 s: every burst is in flight at once
    fakes.b.configure(tokens=10)
    entries = ({"name": "a", "max_concurrent": 10}, {"name": "b"})  # no groups: list order
    with gateway(fakes, *entries) as gw:
        within = burst(gw, fakes.key, 10)
        assert served(fakes.b) == 0 and served(fakes.a) == 10  # the higher tier had room
        over = burst(gw, fakes.key, 30)
    assert [r.status_code for r in within + over] == [200] * 40
    assert fakes.a.load()["inference_peak"] <= 10
    assert served(fakes.b) >= 20 and served(fakes.a) + served(fakes.b) == 40


def test_all_full_without_a_queue_is_503_with_retry_after(fakes: Fakes) -> None:
    fakes.a.configure(tokens=10)
    with gateway(fakes, {"name": "a", "max_concurrent": 2}) as gw:
        answers = burst(gw, fakes.key, 6)
    ok = [r for r in answers if r.status_code == 200]
    full = [r for r in answers if r.status_code != 200]
    assert len(ok) == 2 and len(full) == 4
    assert {r.status_code for r in full} == {503}
    assert all(r.headers["retry-after"] == "1" for r in full)
    assert all("max_concurrent" in r.json()["error"] for r in full)
    assert served(fakes.a) == 2


def test_with_a_queue_timeout_a_waiter_is_served_when_a_slot_frees(fakes: Fakes) -> None:
    with gateway(fakes, {"name": "a", "max_concurrent": 1}, BACKEND_QUEUE_TIMEOUT="20") as gw:
        started = time.monotonic()
        answers = burst(gw, fakes.key, 3)
        took = time.monotonic() - started
    assert [r.status_code for r in answers] == [200] * 3
    assert fakes.a.load()["inference_peak"] == 1 and served(fakes.a) == 3
    assert took >= 3 * 1.5 - 0.5  # one after the other
