"""A graceful stop drains the audit/usage buffer: nothing recorded is lost."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, gateway_env


async def _count(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        value: int = await conn.fetchval(sql)
        return value
    finally:
        await conn.close()


def _tenant_key(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> tuple[dict[str, str], str]:
    """The gateway environment in front of `fake`, and a key of a fresh tenant."""
    env = gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=redis_namespace,
        OLLAMA_URL=fake.url,
    )
    cli(env, "create-tenant", "--name", "acme")
    return env, create_key(env, "acme", "k")


@pytest.mark.parametrize("workers", [1, 2])
def test_stop_drains_the_buffer(database_url: str, redis_namespace: str, workers: int) -> None:
    with FakeOllama() as fake:
        env, key = _tenant_key(database_url, redis_namespace, fake)
        gw = Gateway(env, workers=workers, migrate=False).start()
        body = {"model": "llama3.2", "prompt": "hi", "stream": False, "options": {"num_predict": 3}}
        for _ in range(20):
            r = httpx.post(
                gw.url + "/api/generate",
                json=body,
                timeout=10,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert r.status_code == 200
        gw.stop()  # well within the one-second flush interval of the last requests
    events = asyncio.run(_count(database_url, "SELECT count(*) FROM audit_events"))
    ledger = asyncio.run(_count(database_url, "SELECT coalesce(sum(requests), 0) FROM usage_daily"))
    assert (events, ledger) == (20, 20)


def test_a_stream_in_flight_at_sigterm_completes_and_is_recorded(
    database_url: str, redis_namespace: str
) -> None:
    with FakeOllama() as fake:
        env, key = _tenant_key(database_url, redis_namespace, fake)
        fake.configure(pace_ms=50, tokens=40)  # a two-second stream
        gw = Gateway(env, workers=2, migrate=False).start()
        body = {"model": "llama3.2", "prompt": "hi", "stream": True}
        lines: list[str] = []
        with httpx.stream(
            "POST",
            gw.url + "/api/generate",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        ) as r:
            for line in r.iter_lines():
                if line:
                    lines.append(line)
                if len(lines) == 3:
                    gw.terminate()  # SIGTERM mid-stream
        gw.stop()
    assert '"done":true' in lines[-1]  # the stream ran to its end
    events = asyncio.run(
        _count(database_url, "SELECT count(*) FROM audit_events WHERE status = 200")
    )
    assert events == 1
