"""What the relay hands to the recorder: one audit event per request, prompt logs on opt-in."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import cli, create_key
from tests.routes.conftest import Stack

CHAT = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    "stream": False,
}


def rows(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def wait_rows(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    deadline = time.monotonic() + 5
    while not (found := rows(url, sql, *args)):
        assert time.monotonic() < deadline, sql
        time.sleep(0.2)
    return found


def test_audit_event_and_prompt_log(stack: Stack, fake: FakeOllama, routes_db: str) -> None:
    cli(stack.env, "create-tenant", "--name", "audited")
    key = create_key(stack.env, "audited", "logged", "--log-prompts", "true")
    answer = httpx.post(stack.url + "/api/chat", json=CHAT, headers=stack.auth(key))
    rid = answer.headers["x-request-id"]
    body = answer.json()
    (event,) = wait_rows(routes_db, "SELECT * FROM audit_events WHERE request_id = $1", rid)
    assert (event["status"], event["backend"], event["model"]) == (200, "main", "llama3.2")
    assert event["prompt_tokens"] == body["prompt_eval_count"]
    assert event["completion_tokens"] == body["eval_count"]
    assert event["tokens_estimated"] is False and event["ttfb_ms"] > 0
    (log,) = wait_rows(routes_db, "SELECT * FROM prompt_logs WHERE request_id = $1", rid)
    assert log["response_text"] == body["message"]["content"]
    assert "Why is the sky blue?" in log["request_body"]


def test_no_prompt_log_without_opt_in(stack: Stack, fake: FakeOllama, routes_db: str) -> None:
    answer = httpx.post(stack.url + "/api/chat", json=CHAT, headers=stack.auth())
    rid = answer.headers["x-request-id"]
    wait_rows(routes_db, "SELECT 1 FROM audit_events WHERE request_id = $1", rid)
    assert rows(routes_db, "SELECT 1 FROM prompt_logs WHERE request_id = $1", rid) == []


def test_refusals_and_listings_are_audited_too(stack: Stack, routes_db: str) -> None:
    cases = [
        ("GET", "/v1/models", stack.auth(), 200, None),
        ("GET", "/api/tags", stack.auth(), 200, None),
        (
            "GET",
            "/v1/usage",
            {"Authorization": "Bearer nz_nottherightshape"},
            401,
            "invalid_api_key",
        ),
        ("POST", "/api/PULL/", {}, 403, "blocked_endpoint"),
        ("GET", "/api/nothing-here", stack.auth(), 404, "unknown_url"),
    ]
    for method, path, headers, status, error in cases:
        rid = f"audit-{uuid.uuid4().hex}"
        r = httpx.request(
            method, stack.url + path, headers={**headers, "x-request-id": rid}, timeout=10
        )
        assert r.status_code == status and r.headers["x-request-id"] == rid
        (event,) = wait_rows(
            routes_db, "SELECT * FROM audit_events WHERE client_request_id = $1", rid
        )
        assert (event["status"], event["error"], event["method"]) == (status, error, method)
        assert event["request_id"] == r.headers["x-gateway-request-id"] != rid
        if status == 200:
            assert event["key_prefix"] == stack.key[:11]
    rid = f"audit-{uuid.uuid4().hex}"
    assert httpx.get(stack.url + "/healthz", headers={"x-request-id": rid}).status_code == 200
    time.sleep(1.5)  # probes are not audited
    assert rows(routes_db, "SELECT 1 FROM audit_events WHERE client_request_id = $1", rid) == []


def _usage(stack: Stack, key: str, query: str, path: str = "/v1/usage") -> httpx.Response:
    return httpx.get(stack.url + path + query, headers=stack.auth(key), timeout=10)


def test_usage_by_day_month_and_model_for_the_calling_key(
    stack: Stack, fake: FakeOllama, routes_db: str
) -> None:
    cli(stack.env, "create-tenant", "--name", "usage-by")
    key = create_key(stack.env, "usage-by", "reporter")
    other = create_key(stack.env, "usage-by", "bystander")
    for model, who in (
        ("llama3.2", key),
        ("llama3.2", key),
        ("qwen3:8b", key),
        ("qwen3:8b", other),
    ):
        answer = httpx.post(
            stack.url + "/api/chat", json={**CHAT, "model": model}, headers=stack.auth(who)
        )
        assert answer.status_code == 200
    deadline = time.monotonic() + 10
    while (models := _usage(stack, key, "?by=model").json()["breakdown"])["total"]["requests"] < 3:
        assert time.monotonic() < deadline, models
        time.sleep(0.2)
    assert [(r["model"], r["requests"]) for r in models["rows"]] == [
        ("llama3.2", 2),
        ("qwen3:8b", 1),
    ]
    assert models["total"]["tokens"] == sum(r["tokens"] for r in models["rows"]) > 0
    day = _usage(stack, key, "?by=day", "/api/usage").json()["breakdown"]
    ((today,),) = [[r["day"] for r in day["rows"]]]
    assert day["total"] == models["total"] and day["timezone"] == "UTC"
    month = _usage(stack, key, f"?by=month&since={today}&until={today}").json()["breakdown"]
    assert [r["month"] for r in month["rows"]] == [today[:7]]
    assert month["since"] == month["until"] == today
    assert _usage(stack, key, "?by=day&until=2000-01-01").json()["breakdown"]["rows"] == []
    plain = _usage(stack, key, "").json()
    assert "breakdown" not in plain and plain["key"]["name"] == "reporter"


def test_usage_breakdown_refuses_bad_parameters(stack: Stack) -> None:
    cases = {
        "?by=week": "by must be one of day, month, model",
        "?by=day&since=yesterday": "since must be a date",
        "?by=day&since=2026-11-30&until=2026-11-01": "until must not be before since",
    }
    for query, message in cases.items():
        v1 = _usage(stack, stack.key, query)
        assert v1.status_code == 400 and message in v1.json()["error"]["message"], v1.text
        api = _usage(stack, stack.key, query, "/api/usage")
        assert api.status_code == 400 and message in api.json()["error"], api.text
    assert httpx.get(stack.url + "/v1/usage?by=day").status_code == 401
