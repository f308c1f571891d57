"""What an operator sees: /metrics that add up across workers, readiness, headers, CORS."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, free_port, gateway_env

TOKEN = "metrics-token-0123456789"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


def _sample(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_across_two_workers(database_url: str, fake: FakeOllama) -> None:
    metrics_port = free_port()
    env = gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=f"nzgw-t-{uuid.uuid4().hex[:12]}",
        OLLAMA_URL=fake.url,
        METRICS_PORT=str(metrics_port),
        METRICS_TOKEN=TOKEN,
    )
    cli(env, "create-tenant", "--name", "acme")
    cli(env, "create-tenant", "--name", "tight", "--rpm", "2")
    key, tight = create_key(env, "acme", "k"), create_key(env, "tight", "t")
    with Gateway(env, workers=2) as gw:
        seen_workers = set()
        with httpx.Client(base_url=gw.url, timeout=30, headers={"connection": "close"}) as c:
            for _ in range(6):
                r = c.post("/api/chat", json=CHAT, headers={"authorization": f"Bearer {key}"})
                assert r.status_code == 200
                seen_workers.add(r.headers["x-gateway-worker"])
            statuses = [
                c.post(
                    "/api/chat", json=CHAT, headers={"authorization": f"Bearer {tight}"}
                ).status_code
                for _ in range(4)
            ]
            assert statuses == [200, 200, 429, 429]
            for _ in range(3):
                assert c.get("/api/tags").status_code == 401
            tokens = fake.token_totals()
            assert c.get("/metrics").status_code == 404 or c.get("/metrics").status_code == 401
            assert c.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
            public = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
            assert public.status_code == 200
        time.sleep(0.5)
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        for text in (scraped, public.text):
            assert _sample(text, "nzgw_requests_total", route="/api/chat", status="200") == 8
            assert _sample(text, "nzgw_requests_total", tenant="acme", status="200") == 6
            assert _sample(text, "nzgw_requests_total", status="401", tenant="-") == 3
            assert _sample(text, "nzgw_refusals_total", scope="key", limit="requests") == 2
            charged = _sample(text, "nzgw_tokens_total", model="llama3.2")
            assert charged == tokens["prompt_eval_count"] + tokens["eval_count"]
            assert _sample(text, "nzgw_key_verifications_total", result="ok") >= 2
            assert "nz_" not in text  # no key prefix is a label
        assert len(seen_workers) in (1, 2)


def test_readiness_headers_and_cors(tmp_path: object, fake: FakeOllama) -> None:
    env = gateway_env(
        DATABASE_URL=f"sqlite://{tmp_path}/gw.sqlite3",
        OLLAMA_URL=fake.url,
        CORS_ORIGINS="https://app.example",
    )
    with Gateway(env, workers=1) as gw:
        ready = httpx.get(gw.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "not configured"
        assert ready.headers["x-content-type-options"] == "nosniff"
        assert "server" not in ready.headers
        assert httpx.get(gw.url + "/metrics").status_code == 404  # no token, no port: closed
        pre = httpx.options(
            gw.url + "/v1/chat/completions",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.options(
            gw.url + "/v1/chat/completions",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
        answer = httpx.get(gw.url + "/v1/models", headers={"origin": "https://app.example"})
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
