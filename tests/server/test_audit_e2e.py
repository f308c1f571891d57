"""The audit end to end through real gateways: one event per request, found with `audit --jsonl`,
and none lost while PostgreSQL is away or the gateway stops."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, gateway_env
from tests.proxy import Proxy

CHAT = [{"role": "user", "content": "Why is the sky blue?"}]


@dataclass
class Expect:
    """What the audit should say of one request (None: not checked)."""

    status: int
    model: str | None = None
    prefix: str | None = None
    tokens: tuple[int, int] | None = None
    error: str | None = None
    limit: str | None = None
    any_prefix: bool = False  # the key prefix is not checked


@dataclass
class Run:
    """Requests sent, each with its own client request id, and what their events must show."""

    name: str
    expected: dict[str, Expect] = field(default_factory=dict)

    def rid(self) -> str:
        return f"{self.name}-{uuid.uuid4().hex[:12]}"


def _auth(key: str, rid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "x-request-id": rid, "Connection": "close"}


def _native(run: Run, url: str, key: str, *, stream: bool) -> None:
    rid = run.rid()
    body = {"model": "llama3.2", "messages": CHAT, "stream": stream}
    with httpx.stream("POST", url + "/api/chat", json=body, headers=_auth(key, rid)) as r:
        last = json.loads("".join(r.iter_text()).strip().splitlines()[-1])
    assert r.status_code == 200
    tokens = (last["prompt_eval_count"], last["eval_count"])
    run.expected[rid] = Expect(200, "llama3.2", key[:11], tokens)


def _openai(run: Run, url: str, key: str, *, stream: bool) -> None:
    rid = run.rid()
    body: dict[str, Any] = {"model": "llama3.2", "messages": CHAT, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json=body, headers=_auth(key, rid)
    ) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200
    if stream:
        chunks = [line.removeprefix("data: ") for line in text.splitlines() if line]
        usage = json.loads(chunks[-2])["usage"]  # the last chunk before [DONE]
    else:
        usage = json.loads(text)["usage"]
    tokens = (usage["prompt_tokens"], usage["completion_tokens"])
    run.expected[rid] = Expect(200, "llama3.2", key[:11], tokens)


def _refused(
    run: Run, url: str, method: str, path: str, key: str, expect: Expect, **kw: Any
) -> None:
    rid = run.rid()
    r = httpx.request(method, url + path, headers=_auth(key, rid), timeout=10, **kw)
    assert r.status_code == expect.status, r.text
    run.expected[rid] = expect


def _cancelled(run: Run, url: str, key: str) -> None:
    rid = run.rid()
    body = {"model": "llama3.2", "prompt": "Count", "stream": True}
    with httpx.stream("POST", url + "/api/generate", json=body, headers=_auth(key, rid)) as r:
        for n, _ in enumerate(r.iter_lines()):
            if n == 2:
                break  # the client goes away mid-stream
    run.expected[rid] = Expect(200, "llama3.2", key[:11], error="client_disconnected")


def _events(env: dict[str, str], run: Run, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The run's events, read with `audit --jsonl`, once all of them arrived (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        out = cli(env, "audit", "--jsonl", "--limit", "5000").stdout
        events = [json.loads(line) for line in out.splitlines()]
        mine = [e for e in events if (e["client_request_id"] or "").startswith(run.name + "-")]
        if len(mine) >= len(run.expected) or time.monotonic() > deadline:
            return mine
        time.sleep(0.5)


def _check(run: Run, events: list[dict[str, Any]]) -> None:
    seen = Counter(e["client_request_id"] for e in events)
    assert set(seen) == set(run.expected), set(run.expected) ^ set(seen)
    assert set(seen.values()) == {1}, [rid for rid, n in seen.items() if n > 1]
    for event in events:
        want = run.expected[event["client_request_id"]]
        rid = event["client_request_id"]
        assert event["status"] == want.status, (rid, event)
        if want.model is not None:
            assert event["model"] == want.model, (rid, event)
        assert want.any_prefix or event["key_prefix"] == want.prefix, (rid, event)
        if want.tokens is not None:
            assert (event["prompt_tokens"], event["completion_tokens"]) == want.tokens, event
        if want.error is not None:
            assert event["error"] == want.error, (rid, event)
        if want.limit is not None:
            assert event["limit"] == want.limit, (rid, event)


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def _env(database_url: str, redis_namespace: str, fake: FakeOllama) -> dict[str, str]:
    return gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=redis_namespace,
        OLLAMA_URL=fake.url,
        KEY_CACHE_TTL="300",
    )


def test_a_known_mix_through_two_replicas_has_exactly_one_event_each(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> None:
    env = _env(database_url, redis_namespace, fake)
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "main")
    slow = create_key(env, "acme", "slow", "--rpm", "1")
    embed = create_key(env, "acme", "embed", "--models", "all-minilm")
    first = Gateway(env, workers=2).start()
    second = Gateway(env, workers=2, migrate=False).start()
    run = Run("mix")
    try:
        for url in (first.url, second.url) * 2:
            _native(run, url, key, stream=False)
            _native(run, url, key, stream=True)
            _openai(run, url, key, stream=False)
            _openai(run, url, key, stream=True)
            bad = "nz_" + "x" * 48
            _refused(run, url, "GET", "/v1/models", bad, Expect(401, error="invalid_api_key"))
            _refused(run, url, "POST", "/api/pull", key, Expect(403, error="blocked_endpoint"))
            _refused(run, url, "GET", "/api/nothing", key, Expect(404, error="unknown_url"))
            chat = {"model": "llama3.2", "messages": CHAT, "stream": False}
            _refused(
                run, url, "POST", "/api/chat", embed, Expect(403, "llama3.2", embed[:11]), json=chat
            )
        _refused(
            run,
            first.url,
            "POST",
            "/api/chat",
            slow,
            Expect(200, "llama3.2", slow[:11]),
            json={"model": "llama3.2", "messages": CHAT, "stream": False},
        )
        for url in (first.url, second.url):
            limited = Expect(429, "llama3.2", slow[:11], limit="key:requests")
            _refused(
                run,
                url,
                "POST",
                "/api/chat",
                slow,
                limited,
                json={"model": "llama3.2", "messages": CHAT, "stream": False},
            )
        fake.configure(pace_ms=50, tokens=60)
        _cancelled(run, first.url, key)
        _cancelled(run, second.url, key)
        events = _events(env, run)
    finally:
        first.stop()
        second.stop()
    _check(run, events)
    assert len(run.expected) == 37


def _load(run: Run, url: str, key: str, count: int, *, threads: int = 4) -> dict[str, int]:
    """`count` non-streamed generations, a few at a time; the status each got (0: no answer)."""

    def one(_: int) -> tuple[str, int]:
        rid = run.rid()
        body = {"model": "llama3.2", "prompt": "hi", "stream": False, "options": {"num_predict": 3}}
        try:
            r = httpx.post(url + "/api/generate", json=body, headers=_auth(key, rid), timeout=20)
        except httpx.HTTPError:
            return rid, 0
        return rid, r.status_code

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, range(count)))


def test_postgres_away_for_the_middle_third_loses_and_doubles_nothing(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> None:
    target = urlsplit(database_url)
    with Proxy(target.port or 5432) as proxy:
        via = database_url.replace(target.netloc, f"postgres@127.0.0.1:{proxy.port}")
        env = _env(via, redis_namespace, fake)
        cli(env, "create-tenant", "--name", "acme")
        key = create_key(env, "acme", "main")
        run = Run("outage")
        with Gateway(env, workers=2) as gw:
            statuses = _load(run, gw.url, key, 100)
            proxy.cut()  # PostgreSQL goes away for the middle third
            statuses |= _load(run, gw.url, key, 100)
            time.sleep(1.0)
            proxy.resume()
            statuses |= _load(run, gw.url, key, 100)
            run.expected = {rid: Expect(s, any_prefix=True) for rid, s in statuses.items()}
            assert Counter(statuses.values())[200] >= 200, Counter(statuses.values())
            events = _events(env, run, timeout=90)  # a writer may be in a 30 s back-off
            log = gw.log()
    assert "audit writer: database unavailable" in log  # the outage was seen
    assert "dead letter" not in log, [line for line in log.splitlines() if "dead letter" in line]
    assert len(run.expected) == 300
    seen = Counter(e["client_request_id"] for e in events)
    assert set(seen) == set(run.expected), (len(set(run.expected) - set(seen)), log[-3000:])
    assert set(seen.values()) == {1}
    assert asyncio.run(_ledger_requests(database_url)) == Counter(statuses.values())[200]


async def _ledger_requests(database_url: str) -> int:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        value: int = await conn.fetchval("SELECT coalesce(sum(requests), 0) FROM usage_daily")
        return value
    finally:
        await conn.close()


def _during(action: Callable[[], None], run: Run, url: str, key: str) -> dict[str, int]:
    """150 requests from threads; `action` a second into them."""
    with ThreadPoolExecutor(1) as side:
        future = side.submit(_load, run, url, key, 150)
        time.sleep(1.0)
        action()
        return future.result()


def test_sigterm_during_a_run_every_answered_request_has_its_event(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> None:
    env = _env(database_url, redis_namespace, fake)
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "main")
    run = Run("term")
    gw = Gateway(env, workers=2).start()
    try:
        statuses = _during(gw.terminate, run, gw.url, key)
    finally:
        gw.stop()
    answered = {rid for rid, status in statuses.items() if status == 200}
    assert 0 < len(answered) < 150, Counter(statuses.values())  # the stop came mid-run
    for rid in answered:
        run.expected[rid] = Expect(200, "llama3.2", key[:11])
    events = _events(env, run, timeout=5)
    found = {e["client_request_id"] for e in events}
    assert answered <= found, answered - found
    assert max(Counter(e["client_request_id"] for e in events).values()) == 1


def test_sigkill_of_a_worker_loses_no_event_of_an_answered_request(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> None:
    env = _env(database_url, redis_namespace, fake)
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "main")
    run = Run("kill")
    body = {"model": "llama3.2", "prompt": "hi", "stream": False, "options": {"num_predict": 3}}
    with Gateway(env, workers=2) as gw:
        rid = run.rid()
        answer = httpx.post(gw.url + "/api/generate", json=body, headers=_auth(key, rid))
        os.kill(int(answer.headers["x-gateway-worker"]), signal.SIGKILL)  # right after answering
        assert answer.status_code == 200
        run.expected[rid] = Expect(200, "llama3.2", key[:11], error=None)
        statuses = _load(run, gw.url, key, 20)  # the surviving worker goes on, and records
        assert set(statuses.values()) == {200}, statuses
        run.expected |= {r: Expect(200, "llama3.2", key[:11]) for r in statuses}
        events = _events(env, run, timeout=10)
    found = {e["client_request_id"] for e in events}
    assert set(statuses) <= found
    assert rid in found, "the request answered just before its worker was killed has no event"


def _raw(url: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str]]:
    """Send bytes no HTTP client would; the status and headers of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(head + b"Connection: close\r\n\r\n" + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}


def test_odd_requests_are_recorded_and_so_is_everything_after_them(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> None:
    env = _env(database_url, redis_namespace, fake)
    cli(env, "create-tenant", "--name", "acme")
    key = create_key(env, "acme", "main")
    auth = f"Authorization: Bearer {key}\r\nHost: gw\r\n".encode()
    chat = b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}'
    odd = {
        "method": (b"MKCALENDAR /api/tags HTTP/1.1\r\n", b""),
        "agent": (b"GET /api/tags HTTP/1.1\r\nUser-Agent: bad \xff\xfe byte\r\n", b""),
        "nul": (b"GET /api/tags HTTP/1.1\r\nUser-Agent: nul \x00 here\r\n", b""),
        "long": (b"GET /api/" + b"a" * 7000 + b" HTTP/1.1\r\n", b""),
        "model": (
            b"POST /api/chat HTTP/1.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(chat)}\r\n".encode(),
            chat,
        ),
    }
    run = Run("odd")
    with Gateway(env, workers=2) as gw:
        workers: dict[str, set[str]] = {}
        for kind, (head, body) in odd.items():  # each odd request, on every worker
            for _ in range(40):
                rid = f"odd-{kind}-{uuid.uuid4().hex[:8]}"
                status, headers = _raw(
                    gw.url, head + auth + f"x-request-id: {rid}\r\n".encode(), body
                )
                run.expected[rid] = Expect(status, any_prefix=True)
                workers.setdefault(headers["x-gateway-worker"], set()).add(kind)
                if len(workers) == 2 and all(kind in kinds for kinds in workers.values()):
                    break
        huge, _ = _raw(gw.url, b"GET /api/" + b"a" * 65536 + b" HTTP/1.1\r\n" + auth)
        assert huge == 413  # Sanic refuses a request line over its 16 KiB header limit
        not_http = [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)),  # TLS hello
            b"\x00" * 64,
            b"X" * 33 + b" /api/tags HTTP/1.1\r\n",  # a method longer than any
            b"MK\xffCALENDAR /api/tags HTTP/1.1\r\n",
        ]
        for head in not_http:
            assert _raw(gw.url, head)[0] == 400
        after = _load(run, gw.url, key, 40)
        answered_by = {_worker_of(gw.url, key) for _ in range(40)}
        events = _events(env, run)
    assert len(workers) == 2 and all(len(kinds) == len(odd) for kinds in workers.values())
    assert len(answered_by) == 2 and set(after.values()) == {200}
    run.expected |= {rid: Expect(200, "llama3.2", key[:11]) for rid in after}
    _check(run, events)
    by_kind = {
        e["client_request_id"].split("-")[1]: e for e in events if "-" in e["client_request_id"][4:]
    }
    assert by_kind["method"]["method"] == "MKCALENDAR" and by_kind["method"]["status"] == 405
    assert by_kind["agent"]["user_agent"] == "bad \ufffd\ufffd byte"
    assert by_kind["nul"]["user_agent"] == "nul \ufffd here"
    assert len(by_kind["long"]["path"]) == 2048 and by_kind["long"]["path"].endswith("…")
    # a lone surrogate is refused (400, the one reading allows no lone surrogate) and recorded
    assert by_kind["model"]["status"] == 400 and by_kind["model"]["key_prefix"] == key[:11]
    refused = asyncio.run(
        _fetch(database_url, "SELECT count(*) FROM audit_events WHERE status = 413")
    )
    assert refused >= 1  # the 64 KiB request line is recorded too, as Sanic's 413
    sql = "SELECT count(*) FROM audit_events WHERE status = 400 AND error = 'not_http'"
    deadline = time.monotonic() + 10
    while asyncio.run(_fetch(database_url, sql)) < len(not_http):  # bytes that are no HTTP too
        assert time.monotonic() < deadline, asyncio.run(_fetch(database_url, sql))
        time.sleep(0.2)


def _worker_of(url: str, key: str) -> str:
    r = httpx.get(
        url + "/api/tags", headers={"Authorization": f"Bearer {key}", "Connection": "close"}
    )
    return r.headers["x-gateway-worker"]


async def _fetch(database_url: str, sql: str) -> Any:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _pg_dump(database_url: str) -> str:
    parts = urlsplit(database_url)
    proc = subprocess.run(
        [
            "pg_dump",
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            parts.path.lstrip("/"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def test_prompts_are_stored_only_for_keys_that_opted_in_and_gone_after_ttl_and_purge(
    database_url: str, redis_namespace: str, fake: FakeOllama
) -> None:
    env = _env(database_url, redis_namespace, fake)
    cli(env, "create-tenant", "--name", "acme")
    private = create_key(env, "acme", "private")
    logged = create_key(env, "acme", "logged", "--log-prompts", "on", "--prompt-ttl-days", "1")
    secret, kept = f"marker-{uuid.uuid4().hex}", f"marker-{uuid.uuid4().hex}"
    run = Run("privacy")
    with Gateway(env, workers=2) as gw:
        for who, marker in ((private, secret), (logged, kept)):
            for stream in (False, True):
                rid = run.rid()
                body = {
                    "model": "llama3.2",
                    "stream": stream,
                    "messages": [{"role": "user", "content": f"say {marker}"}],
                }
                r = httpx.post(gw.url + "/api/chat", json=body, headers=_auth(who, rid), timeout=20)
                assert r.status_code == 200
                run.expected[rid] = Expect(200, "llama3.2", who[:11])
        _check(run, _events(env, run))
        deadline = time.monotonic() + 10
        while asyncio.run(_fetch(database_url, "SELECT count(*) FROM prompt_logs")) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        log = gw.log()
    dump = _pg_dump(database_url)
    assert secret not in dump and secret not in log
    assert dump.count(kept) == 2  # both of the logged key's requests
    (prompt,) = json.loads(cli(env, "prompts", "--prefix", logged[:11], "--json").stdout)[:1]
    assert kept in prompt["request_body"] and prompt["response_text"]
    asyncio.run(_fetch(database_url, "UPDATE prompt_logs SET expires_at = now() - interval '1 s'"))
    assert cli(env, "purge-prompts").stdout.strip() == "purged 2 expired prompt logs"
    assert kept not in _pg_dump(database_url)
