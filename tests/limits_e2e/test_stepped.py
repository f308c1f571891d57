"""Budgets and tpm as a ceiling, not a queue: stepped reservations through two replicas x two
workers, checked against the fake Ollama's own token counts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key
from tests.limits_e2e.conftest import MODEL, Cluster, env_for, usage

STEP = 512  # OUTPUT_RESERVE_STEP's default


def _urls(cluster: Cluster) -> list[str]:
    return [r.url for r in cluster.replicas]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _stream(client: httpx.AsyncClient, url: str, path: str, key: str) -> int:
    messages = [{"role": "user", "content": "tell me a long story"}]
    body: dict[str, Any] = {"model": MODEL, "stream": True, "messages": messages}
    async with client.stream("POST", url + path, json=body, headers=_auth(key)) as r:
        await r.aread()
        return r.status_code


def test_uncapped_streams_do_not_serialise_a_tenant(cluster: Cluster) -> None:
    cluster.fake.configure(tokens=300, pace_ms=20)  # the slow ones run ~6 s
    tenant = cluster.tenant("--daily-tokens", "5000000")
    keys = [cluster.key(tenant), cluster.key(tenant)]
    urls = _urls(cluster)

    async def run() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(timeout=60) as client:
            slow = [
                asyncio.create_task(_stream(client, urls[i % 2], path, keys[i % 2]))
                for i, path in enumerate(("/api/chat", "/v1/chat/completions") * 2)
            ]
            await asyncio.sleep(1.0)  # they are under way and hold their reservations
            cluster.fake.configure(pace_ms=0)

            async def one(i: int) -> int:
                key, url = keys[i % 2], urls[i % 2]
                body: dict[str, Any] = {"model": MODEL, "prompt": "hi", "stream": i % 4 < 2}
                if i % 3 == 0:
                    body["options"] = {"num_predict": 20}
                async with client.stream(
                    "POST", url + "/api/generate", json=body, headers=_auth(key)
                ) as r:
                    await r.aread()
                    return r.status_code

            more = await asyncio.gather(*(one(i) for i in range(40)))
            return list(more), list(await asyncio.gather(*slow))

    more, slow = asyncio.run(run())
    assert more == [200] * 40 and slow == [200] * 4


@pytest.mark.parametrize("scope", ["key", "tenant"])
def test_64_uncapped_streams_stay_within_the_budget(cluster: Cluster, scope: str) -> None:
    # 500 tokens/s a stream, several times a fast GPU: what the backend makes past what the
    # gateway has read is the gateway's lag behind it, so the pace keeps that lag small
    cluster.fake.configure(tokens=3000, pace_ms=2, fast=False)
    budget = 10_000
    if scope == "key":
        keys = [cluster.key(cluster.tenant(), "--daily-tokens", str(budget))]
    else:
        tenant = cluster.tenant("--daily-tokens", str(budget))
        keys = [cluster.key(tenant) for _ in range(3)]
    urls = _urls(cluster)

    async def run() -> list[str]:
        natives = [
            ollama.AsyncClient(host=urls[i % 2], headers=_auth(keys[i % len(keys)]))
            for i in range(2 * len(keys))
        ]
        openais = [
            openai.AsyncOpenAI(base_url=urls[i % 2] + "/v1", api_key=keys[i % len(keys)])
            for i in range(2 * len(keys))
        ]

        async def native(i: int) -> str:
            client = natives[i % len(natives)]
            try:
                parts = [
                    p
                    async for p in await client.chat(  # type: ignore[call-overload]
                        model=MODEL, messages=[{"role": "user", "content": "go"}], stream=True
                    )
                ]
            except ollama.ResponseError as exc:
                assert exc.status_code == 429, exc
                return "refused"
            return str(parts[-1].done_reason)

        async def chat(i: int) -> str:
            client = openais[i % len(openais)]
            try:
                stream = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "go"}], stream=True
                )
                chunks = [c async for c in stream]
            except openai.RateLimitError:
                return "refused"
            return str(chunks[-1].choices[0].finish_reason)

        return list(await asyncio.gather(*(native(i) if i % 2 else chat(i) for i in range(64))))

    endings = asyncio.run(run())
    generated = cluster.fake.token_totals()
    used = generated["generated"] + generated["prompt_eval_count"]
    assert used <= budget + STEP, generated  # the backend's own count: never past the budget
    assert used >= 0.8 * budget, generated  # and most of it was usable
    finished = [e for e in endings if e != "refused"]
    assert finished and set(finished) <= {"length", "stop"}, endings
    assert "length" in finished  # the budget stopped some of them, normally
    time.sleep(0.5)
    day = usage(urls[0], keys[0])["usage"][scope]["day"]
    assert day <= budget + STEP


def test_a_long_stream_keeps_its_slot_past_the_lease_ttl(package_db: str, fake: FakeOllama) -> None:
    env = env_for(package_db, "redis://127.0.0.1:6379/0", fake, LEASE_TTL="3")
    cli(env, "create-tenant", "--name", "leased")
    key = create_key(env, "leased", "one", "--max-concurrent", "1", "--daily-tokens", "100000")
    fake.configure(tokens=100, pace_ms=100)  # a 10 s stream
    with Gateway(env, workers=2) as gw:

        async def run() -> tuple[int, list[int]]:
            async with httpx.AsyncClient(timeout=60) as client:
                long = asyncio.create_task(_stream(client, gw.url, "/api/chat", key))
                refused = []
                for _ in range(8):
                    await asyncio.sleep(1.0)
                    r = await client.post(
                        gw.url + "/api/generate",
                        json={"model": MODEL, "prompt": "x", "stream": False},
                        headers=_auth(key),
                    )
                    refused.append(r.status_code)
                return await long, refused

        status, refused = asyncio.run(run())
    assert status == 200 and refused == [429] * 8, refused


def test_a_huge_tpm_never_refuses_uncapped_requests(cluster: Cluster) -> None:
    cluster.fake.configure(tokens=50)
    key = cluster.key(cluster.tenant(), "--tpm", "1000000000")
    urls = _urls(cluster)

    async def run() -> list[int]:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(timeout=30) as client:

            async def worker(i: int) -> list[int]:
                seen = []
                while time.monotonic() < deadline:
                    seen.append(await _stream(client, urls[i % 2], "/api/chat", key))
                return seen

            results = await asyncio.gather(*(worker(i) for i in range(32)))
        return [s for r in results for s in r]

    seen = asyncio.run(run())
    assert seen and set(seen) == {200}, set(seen)  # none refused


def test_a_small_tpm_admits_while_the_minute_has_room(cluster: Cluster) -> None:
    cluster.fake.configure(tokens=800, pace_ms=1)
    key = cluster.key(cluster.tenant(), "--tpm", "2000")
    urls = _urls(cluster)

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(
                await asyncio.gather(
                    *(_stream(client, urls[i % 2], "/api/chat", key) for i in range(10))
                )
            )

    seen = asyncio.run(run())
    assert 200 in seen and 429 in seen
    totals = cluster.fake.token_totals()
    assert totals["generated"] + totals["prompt_eval_count"] <= 2000 + STEP, totals


def test_embeddings_are_admitted_beside_an_uncapped_stream(cluster: Cluster) -> None:
    cluster.fake.configure(tokens=200, pace_ms=20)
    key = cluster.key(cluster.tenant(), "--daily-tokens", "3000")
    url = cluster.replicas[0].url

    async def run() -> tuple[int, list[int]]:
        async with httpx.AsyncClient(timeout=60) as client:
            long = asyncio.create_task(_stream(client, url, "/api/chat", key))
            await asyncio.sleep(0.5)
            embeds = []
            for path, body in (
                ("/api/embed", {"model": "all-minilm", "input": "hello"}),
                ("/v1/embeddings", {"model": "all-minilm", "input": "hello"}),
                ("/api/embeddings", {"model": "all-minilm", "prompt": "hello"}),
            ):
                r = await client.post(url + path, json=body, headers=_auth(key))
                embeds.append(r.status_code)
            return await long, embeds

    status, embeds = asyncio.run(run())
    assert status == 200 and embeds == [200, 200, 200]


def test_cut_answers_are_charged_what_was_generated(cluster: Cluster) -> None:
    key = cluster.key(cluster.tenant(), "--daily-tokens", "1000000")
    url = cluster.replicas[0].url
    body = {"model": MODEL, "prompt": "Why is the sky blue?", "stream": False}

    # a client that leaves a non-streamed request: charged the prompt and the reserved output
    cluster.fake.configure(tokens=200, pace_ms=10)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/api/generate", json=body, headers=_auth(key), timeout=0.5)
    cluster.fake.wait_cancellations(1, timeout=5)
    time.sleep(0.5)
    after_gone = usage(url, key)["usage"]["key"]["day"]
    assert after_gone >= 4096  # NON_STREAM_OUTPUT_CAP: what it may have generated

    # a backend that breaks mid-stream: charged the prompt and what passed through
    cluster.fake.reset()
    cluster.fake.configure(fault="abrupt_close", fault_after=7, pace_ms=5)
    streamed = {**body, "stream": True}
    with (
        pytest.raises(httpx.HTTPError),
        httpx.stream("POST", url + "/api/generate", json=streamed, headers=_auth(key)) as r,
    ):
        r.read()
    time.sleep(0.5)
    broke = usage(url, key)["usage"]["key"]["day"] - after_gone
    generated = cluster.fake.token_totals()["generated"]
    assert generated <= broke - 20 <= generated + 20, (broke, generated)
