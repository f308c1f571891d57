"""What an operator sees: /metrics that add up across workers, readiness, headers, CORS, logs."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from server.accounting.queue import shard_keys
from tests.conftest import REDIS_URL
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, free_port, gateway_env

TOKEN = "metrics-token-0123456789"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
# Every label a series may carry: bounded sets (no key prefix, request id, address or path).
LABELS = {"surface", "route", "status", "tenant", "model", "kind", "scope", "limit", "result"}
LABELS |= {"backend", "reason", "le"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


def _labels(line: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}


def _sample(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = _labels(line)
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _series(text: str, name: str, label: str) -> set[str]:
    """The values one label takes in a metric's samples."""
    return {
        _labels(line).get(label, "") for line in text.splitlines() if line.startswith(name + "{")
    }


def _label_names(text: str) -> set[str]:
    return {k for line in text.splitlines() if not line.startswith("#") for k in _labels(line)}


def _until_two_workers(send: Callable[[], httpx.Response], limit: int = 60) -> list[httpx.Response]:
    """Send (each on a fresh connection) until two workers have answered."""
    answers: list[httpx.Response] = []
    while len({r.headers["x-gateway-worker"] for r in answers}) < 2:
        assert len(answers) < limit, f"{limit} requests, all answered by one worker"
        answers.append(send())
    return answers


def _access_lines(log: str) -> list[dict[str, object]]:
    """The access lines of a gateway's JSON log."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "access"]


def _preflight(base: str, origin: str) -> httpx.Response:
    """A browser's CORS preflight for a chat completion from `origin`."""
    return httpx.options(
        base + "/v1/chat/completions",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


def _scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_metrics_add_up_across_two_workers(database_url: str, fake: FakeOllama) -> None:
    metrics_port, namespace = free_port(), f"nzgw-t-{uuid.uuid4().hex[:12]}"
    env = gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=namespace,
        OLLAMA_URL=fake.url,
        METRICS_PORT=str(metrics_port),
        METRICS_TOKEN=TOKEN,
    )
    cli(env, "create-tenant", "--name", "acme")
    cli(env, "create-tenant", "--name", "tight", "--rpm", "2")
    key, tight = create_key(env, "acme", "k"), create_key(env, "tight", "t")
    # Two dead letters wait before the start: a scrape alone (no /readyz) must show them.
    dead = shard_keys(namespace)[0].dead
    with redis.Redis.from_url(REDIS_URL) as r:
        for _ in range(2):
            r.xadd(dead, {"event": b"{}", "why": b"test"})
    before = fake.token_totals()
    try:
        with Gateway(env, workers=2) as gw:
            # Read when each worker starts, not first after QUEUE_GAUGE_INTERVAL (15 s).
            deadline = time.monotonic() + 3
            while _sample(_scrape(metrics_port), "nzgw_audit_dead_letters") != 2:
                assert time.monotonic() < deadline, "the dead letters are not on the gauge"
                time.sleep(0.1)
            with httpx.Client(base_url=gw.url, timeout=30, headers={"connection": "close"}) as c:
                auth = {"authorization": f"Bearer {key}"}
                ok = _until_two_workers(lambda: c.post("/api/chat", json=CHAT, headers=auth))
                assert [r.status_code for r in ok] == [200] * len(ok)
                auth = {"authorization": f"Bearer {tight}"}
                refused = [c.post("/api/chat", json=CHAT, headers=auth) for _ in range(4)]
                assert [r.status_code for r in refused] == [200, 200, 429, 429]
                unknown = [c.get("/api/tags") for _ in range(3)] + [c.get("/api/nowhere")]
                unknown.append(c.get("/v1/nowhere", headers={"authorization": f"Bearer {key}"}))
                assert [r.status_code for r in unknown] == [401, 401, 401, 404, 404]
                assert c.get("/metrics").status_code == 401
                wrong = c.get("/metrics", headers={"authorization": "Bearer wrong-token-0123456"})
                assert wrong.status_code == 401
                time.sleep(0.5)  # the last request's slot is given back after its last byte
                public = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
                assert public.status_code == 200
            tokens = fake.token_totals()
            scraped = _scrape(metrics_port)
    finally:
        with redis.Redis.from_url(REDIS_URL) as r:
            r.delete(dead)
    n = len(ok)
    charged = sum(tokens[k] - before[k] for k in ("prompt_eval_count", "eval_count"))
    answers = ok + refused + unknown
    for text in (scraped, public.text):
        assert _sample(text, "nzgw_requests_total") == n + 4 + 5  # nothing else was counted
        assert _sample(text, "nzgw_requests_total", route="/api/chat", status="200") == n + 2
        assert _sample(text, "nzgw_requests_total", tenant="acme", status="200") == n
        assert _sample(text, "nzgw_requests_total", tenant="tight", status="429") == 2
        assert _sample(text, "nzgw_requests_total", status="401", tenant="-") == 3
        assert _sample(text, "nzgw_requests_total", status="404") == 2
        assert _sample(text, "nzgw_refusals_total", scope="key", limit="requests") == 2
        assert _sample(text, "nzgw_refusals_total") == 2
        assert _sample(text, "nzgw_tokens_total", model="llama3.2") == charged > 0
        assert _sample(text, "nzgw_key_verifications_total", result="ok") >= 2
        assert _sample(text, "nzgw_request_duration_seconds_count") == n + 4 + 5
        # The backend series: up, nothing left in flight, no fail-over.
        assert _series(text, "nzgw_backend_up", "backend") == {"ollama"}
        assert _sample(text, "nzgw_backend_up", backend="ollama") == 1
        assert _series(text, "nzgw_backend_in_flight", "backend") == {"ollama"}
        assert _sample(text, "nzgw_backend_in_flight", backend="ollama") == 0
        assert _sample(text, "nzgw_failovers_total") == 0
        assert _sample(text, "nzgw_audit_dead_letters") == 2
        assert "nzgw_audit_queue_depth" in text
        # Bounded labels: no key prefix, no request id (the server's or the client's).
        assert _label_names(text) <= LABELS
        assert _series(text, "nzgw_requests_total", "tenant") == {"acme", "tight", "-"}
        assert "nz_" not in text and key[3:11] not in text and tight[3:11] not in text
        for answer in answers:
            assert answer.headers["x-gateway-request-id"] not in text
    assert len({r.headers["x-gateway-worker"] for r in ok}) == 2


def test_backend_series_and_the_metrics_port(database_url: str, fake: FakeOllama) -> None:
    """METRICS_PORT without METRICS_TOKEN; two backends, the first busy and then gone."""
    metrics_port = free_port()
    with FakeOllama() as first:
        backends = [{"name": "first", "url": first.url}, {"name": "second", "url": fake.url}]
        env = gateway_env(
            DATABASE_URL=database_url,
            REDIS_URL=REDIS_URL,
            REDIS_NAMESPACE=f"nzgw-t-{uuid.uuid4().hex[:12]}",
            OLLAMA_BACKENDS=json.dumps(backends),
            BACKEND_PROBE_INTERVAL="120",  # a cool-down that outlasts the test
            METRICS_PORT=str(metrics_port),
        )
        cli(env, "create-tenant", "--name", "acme")
        key = create_key(env, "acme", "k")
        auth = {"authorization": f"Bearer {key}", "connection": "close"}
        with Gateway(env, workers=2) as gw:
            # Off by default: /metrics on the public port, and CORS.
            assert httpx.get(gw.url + "/metrics").status_code == 404
            pre = _preflight(gw.url, "https://a.example")
            answer = httpx.get(gw.url + "/healthz", headers={"origin": "https://a.example"})
            for response in (pre, answer):
                assert not [h for h in response.headers if h.startswith("access-control-")]
            text = _scrape(metrics_port)
            assert _sample(text, "nzgw_backend_up", backend="first") == 1
            assert _sample(text, "nzgw_backend_up", backend="second") == 1

            first.configure(fault="busy")  # Ollama's 503 "server busy": the next one serves
            served_before = len(fake.requests("/api/chat"))
            for _ in range(3):
                assert httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code == 200
            assert len(fake.requests("/api/chat")) == served_before + 3
            text = _scrape(metrics_port)
            assert _sample(text, "nzgw_failovers_total", backend="first", reason="busy") == 3
            assert _sample(text, "nzgw_backend_up", backend="first") == 1  # busy is not down

            first.stop()  # its port is closed now: each worker finds out once, then skips it
            ok = _until_two_workers(
                lambda: httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth)
            )
            assert [r.status_code for r in ok] == [200] * len(ok)
            time.sleep(0.5)
            text = _scrape(metrics_port)
    assert _sample(text, "nzgw_failovers_total", backend="first", reason="unreachable") == 2
    assert _sample(text, "nzgw_failovers_total", backend="second") == 0
    assert _sample(text, "nzgw_backend_up", backend="first") == 0
    assert _sample(text, "nzgw_backend_up", backend="second") == 1
    assert _sample(text, "nzgw_backend_in_flight", backend="first") == 0
    assert _sample(text, "nzgw_backend_in_flight", backend="second") == 0
    assert _sample(text, "nzgw_requests_total", route="/api/chat", status="200") == 3 + len(ok)
    assert _label_names(text) <= LABELS


def test_public_headers_and_the_access_line(database_url: str, fake: FakeOllama) -> None:
    """Two workers as deployed: no debug header, no banner, CORS only for the listed origin."""
    env = gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=f"nzgw-t-{uuid.uuid4().hex[:12]}",
        OLLAMA_URL=fake.url,
        DEBUG_HEADERS=None,
        LOG_FORMAT="json",
        CORS_ORIGINS="https://a.example",
    )
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "k")
    auth = {"authorization": f"Bearer {key}", "connection": "close"}
    with Gateway(env, workers=2) as gw:
        chats: list[httpx.Response] = []
        while len({a["pid"] for a in _access_lines(gw.log())}) < 2:  # each worker, unmarked
            assert len(chats) < 60, "60 requests, all answered by one worker"
            chats.append(
                httpx.post(
                    gw.url + "/api/chat",
                    json=CHAT,
                    headers={
                        **auth,
                        "origin": "https://b.example",
                        "x-request-id": f"c-{len(chats)}",
                    },
                )
            )
        others = [
            httpx.get(gw.url + "/api/tags", headers={"origin": "https://b.example"}),  # 401
            httpx.get(gw.url + "/nowhere", headers={"origin": "https://b.example"}),  # 404
            httpx.get(gw.url + "/healthz"),
        ]
        assert [r.status_code for r in chats + others] == [200] * len(chats) + [401, 404, 200]
        for response in chats + others:
            assert "x-gateway-worker" not in response.headers
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "server" not in response.headers
            assert not [h for h in response.headers if h.startswith("access-control-")]
        pre = _preflight(gw.url, "https://a.example")
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://a.example"
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert pre.headers["access-control-allow-headers"] == "authorization, content-type"
        allowed = httpx.get(gw.url + "/healthz", headers={"origin": "https://a.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://a.example"
        log = gw.log()
    lines = _access_lines(log)
    access = {a["request_id"]: a for a in lines}
    logged = [r.headers["x-gateway-request-id"] for r in [*chats, *others[:2], pre]]
    assert len(lines) == len(access) and set(access) == set(logged)  # one line each, no more
    for i, chat in enumerate(chats):
        line = access[chat.headers["x-gateway-request-id"]]
        body = chat.json()
        assert line["message"] == "POST /api/chat 200"
        assert line["client_request_id"] == f"c-{i}"
        assert line["tenant"] == "acme" and line["key_prefix"] == key[:11]
        assert line["status"] == 200 and line["latency_ms"] > 0
        assert line["prompt_tokens"] == body["prompt_eval_count"]
        assert line["completion_tokens"] == body["eval_count"]
    refused = access[others[0].headers["x-gateway-request-id"]]
    assert refused["status"] == 401 and refused["tenant"] is None
    assert access[others[1].headers["x-gateway-request-id"]]["status"] == 404
    assert key not in log and key[11:] not in log  # the prefix, never the secret


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
        pre = _preflight(gw.url, "https://app.example")
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        other = _preflight(gw.url, "https://evil.example")
        assert "access-control-allow-origin" not in other.headers
        answer = httpx.get(gw.url + "/v1/models", headers={"origin": "https://app.example"})
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
