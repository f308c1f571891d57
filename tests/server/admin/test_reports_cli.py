"""audit, prompts, usage --by and purge-prompts as an operator runs them (PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from tortoise import Tortoise

from config import Settings
from models import PromptLog
from server.accounting.queue import shard_keys
from server.accounting.record import PromptRecord, RequestRecord
from server.accounting.store import store
from server.stores.database import database
from tests.server.admin.operator import REDIS_URL, Operator, base_env

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ODD_AGENT = 'agent, with "quotes"\nand a newline'


def _keys(op: Operator) -> tuple[dict[str, Any], dict[str, Any]]:
    op.out("create-tenant --name acme")
    op.out("create-tenant --name other")
    op.out("create-key --tenant acme --name alpha --log-prompts on")
    op.out("create-key --tenant acme --name beta")
    alpha, beta = op.json("list-keys --tenant acme --json")
    return alpha, beta


def _events(alpha: dict[str, Any], beta: dict[str, Any], tenant_id: int) -> list[RequestRecord]:
    def rec(rid: str, minutes: int, **fields: Any) -> RequestRecord:
        values: dict[str, Any] = {
            "request_id": rid,
            "surface": "api",
            "method": "POST",
            "path": "/api/chat",
            "status": 200,
            "time": T0 + timedelta(minutes=minutes),
            **fields,
        }
        return RequestRecord(**values)

    def charged(key: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "key_id": key["id"],
            "key_prefix": key["prefix"],
            "backend": "main",
            "usage_day": "2026-11-30",
            **fields,
        }

    return [
        rec(
            "r1",
            0,
            **charged(alpha, model="llama3.2", prompt_tokens=10, completion_tokens=5),
            client_request_id="mine-1",
            latency_ms=120.4,
            ttfb_ms=30.2,
            client_ip="10.0.0.7",
            user_agent=ODD_AGENT,
            prompt=PromptRecord('{"q": "sky?"}', "blue " * 40, 7),
        ),
        rec(
            "r2",
            1,
            **charged(
                alpha, model="qwen2.5", prompt_tokens=7, completion_tokens=3, tokens_estimated=True
            ),
            surface="v1",
            path="/v1/chat/completions",
        ),
        rec(
            "r3",
            2,
            **charged(
                beta, model="llama3.2", prompt_tokens=1, completion_tokens=1, usage_day="2026-12-01"
            ),
        ),
        rec(
            "r4",
            3,
            status=429,
            tenant_id=tenant_id,
            key_id=beta["id"],
            key_prefix=beta["prefix"],
            model="llama3.2",
            error="rate_limit_exceeded",
            limit="key:requests",
        ),
        rec("r5", 4, status=401, method="GET", path="/api/\x1b[31mred", error="invalid_api_key"),
    ]


def _fill(url: str, records: list[RequestRecord]) -> None:
    async def go() -> None:
        async with database(Settings(database_url=url)):
            result = await store(records, postgres=not url.startswith("sqlite"))
            assert result.inserted == len(records)
            await PromptLog.create(
                request_id="old",
                key_id=records[0].key_id,
                request_body="{}",
                response_text="gone",
                expires_at=datetime.now(UTC) - timedelta(hours=1),
            )
        await Tortoise.close_connections()

    asyncio.run(go())


def test_reading_the_audit_log_prompts_and_usage(operator: tuple[Operator, str]) -> None:
    op, url = operator
    alpha, beta = _keys(op)
    tenant_id = op.json("list-tenants --json")[0]["id"]
    _fill(url, _events(alpha, beta, tenant_id))

    header, *lines = op.out("audit").splitlines()
    assert header.split() == [
        "TIME",
        "REQUEST",
        "ID",
        "CLIENT",
        "ID",
        "TENANT",
        "KEY",
        "SURFACE",
        "METHOD",
        "PATH",
        "MODEL",
        "BACKEND",
        "STATUS",
        "LATENCY",
        "TTFB",
        "TOKENS",
        "CLIENT",
        "LIMIT",
    ]
    assert [line.split()[1] for line in lines] == ["r5", "r4", "r3", "r2", "r1"]  # newest first
    assert "\x1b" not in lines[0] and "/api/\\x1b[31mred" in lines[0]
    assert lines[1].split()[3:5] == ["acme", beta["prefix"]] and "key:requests" in lines[1]
    assert "~7+3" in lines[3] and "10+5" in lines[4] and "120ms" in lines[4]

    events = [json.loads(line) for line in op.out("audit --jsonl").splitlines()]
    assert [e["request_id"] for e in events] == ["r5", "r4", "r3", "r2", "r1"]
    first = events[-1]
    assert first["time"] == "2026-11-30T12:00:00+00:00" and first["tenant"] == "acme"
    assert (first["client_request_id"], first["key_prefix"]) == ("mine-1", alpha["prefix"])
    assert (first["prompt_tokens"], first["completion_tokens"]) == (10, 5)
    assert first["tokens_estimated"] is False and first["user_agent"] == ODD_AGENT
    assert events[0]["tenant"] is None and events[0]["error"] == "invalid_api_key"
    assert op.json("audit --json") == events

    table = list(csv.DictReader(io.StringIO(op.out("audit --csv"))))
    assert [r["request_id"] for r in table] == ["r5", "r4", "r3", "r2", "r1"]
    assert table[-1]["user_agent"] == ODD_AGENT and table[0]["tenant"] == ""

    filters = {
        "--tenant acme": ["r4", "r3", "r2", "r1"],
        f"--prefix {alpha['prefix']}": ["r2", "r1"],
        "--status 429": ["r4"],
        "--model llama3.2": ["r4", "r3", "r1"],
        "--since 2026-11-30T12:01Z --until 2026-11-30T12:03:00+00:00": ["r3", "r2"],
        "--until 2026-11-30": ["r5", "r4", "r3", "r2", "r1"],  # a bare date: the whole day
        "--since 2026-12-01": [],
        "--limit 2": ["r5", "r4"],
        "--tenant other": [],
    }
    found = op.run(*(f"audit --json {flags}" for flags in filters))
    for (flags, expected), proc in zip(filters.items(), found, strict=True):
        assert [e["request_id"] for e in json.loads(proc.stdout)] == expected, flags
    assert op.out("audit --tenant other") == "no audit events match\n"

    (logged,) = op.json(f"prompts --prefix {alpha['prefix']} --json")
    assert logged["request_id"] == "r1" and logged["response_text"] == "blue " * 40
    prompts = op.out(f"prompts --prefix {alpha['prefix']}").splitlines()
    assert prompts[0].split()[:4] == ["CREATED", "REQUEST", "ID", "EXPIRES"]
    assert "r1" in prompts[1] and "…" in prompts[1]  # cut to one short line
    assert op.out(f"prompts --prefix {beta['prefix']}").startswith("no prompt logs for key")
    assert op.out("purge-prompts") == "purged 1 expired prompt log\n"
    assert op.out("purge-prompts") == "purged 0 expired prompt logs\n"

    by_model = op.json("usage --tenant acme --by model --json")
    assert by_model["totals"] == [
        {
            "model": "llama3.2",
            "requests": 2,
            "prompt_tokens": 11,
            "completion_tokens": 6,
            "tokens": 17,
        },
        {
            "model": "qwen2.5",
            "requests": 1,
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "tokens": 10,
        },
    ]
    assert by_model["total"]["tokens"] == 27 and len(by_model["rows"]) == 3
    days = op.out("usage --tenant acme --by day").splitlines()
    assert days[0] == "usage of tenant acme by day, all time (UTC)"
    assert days[2].split() == ["2026-11-30", alpha["prefix"], "alpha", "2", "17", "8", "25"]
    assert days[3].split() == ["2026-12-01", beta["prefix"], "beta", "1", "1", "1", "2"]
    assert days[4].split() == ["(total)", "(all)", "3", "18", "9", "27"]
    month = list(csv.DictReader(io.StringIO(op.out("usage --tenant acme --by month --csv"))))
    assert [(r["month"], r["key"], r["tokens"]) for r in month] == [
        ("2026-11", alpha["prefix"], "25"),
        ("2026-12", beta["prefix"], "2"),
        ("2026-11", "(all)", "25"),
        ("2026-12", "(all)", "2"),
        ("(total)", "(all)", "27"),
    ]
    one = op.json(f"usage --prefix {alpha['prefix']} --by day --since 2026-11-30 --json")
    assert one["key"] == alpha["prefix"] and one["total"]["tokens"] == 25
    summary = op.json("usage --tenant acme --json")
    assert [(k["prefix"], k["total"]["tokens"]) for k in summary["keys"]] == [
        (alpha["prefix"], 25),
        (beta["prefix"], 2),
    ]
    rows = list(csv.DictReader(io.StringIO(op.out("usage --tenant acme --csv"))))
    assert rows[2] == {
        "key": "(all)",
        "period": "total",
        "requests": "3",
        "prompt_tokens": "18",
        "completion_tokens": "9",
        "tokens": "27",
        "budget": "",
        "remaining": "",
    }
    assert rows[-1]["key"] == beta["prefix"] and rows[-1]["tokens"] == "2"


def test_reading_commands_refuse_mistakes_with_one_line(operator: tuple[Operator, str]) -> None:
    op, url = operator
    alpha, _ = _keys(op)
    mistakes = {
        "audit --tenant nope": "no tenant named 'nope'",
        "audit --prefix nz_00000000": "no key with prefix nz_00000000",
        "audit --status 42": "--status needs a whole number from 100 to 599",
        "audit --limit 0": "--limit needs a whole number from 1",
        "audit --since tomorrow": "--since needs an ISO 8601 time",
        "audit --since 2026-11-30T12:00Z --until 2026-11-30T11:00Z": "--until must be after",
        "audit --json --csv": "--json and --csv exclude each other",
        "prompts --prefix nope": "is not a key prefix",
        "usage --tenant acme --by week": "--by must be one of day, month, model",
        "usage --tenant acme --since 2026-11-01": "--since and --until go with --by",
        "usage --tenant acme --by day --since 2026-11-30 --until 2026-11-01": "must not be before",
        "usage --tenant acme --by day --until 30.11.2026": "--until needs a date",
        "usage --tenant acme --json --csv": "--json and --csv exclude each other",
    }
    if url.startswith("sqlite"):
        mistakes["audit --dead-letter"] = "dead letters are kept in Redis and REDIS_URL is not set"
    for error, expected in zip(op.fails(*mistakes), mistakes.values(), strict=True):
        assert expected in error, error
    usages = {  # the command line itself is wrong: exit 2, one line
        "audit --color": "audit has no option --color",
        "prompts": "--prefix is required",
        "usage --by day": "either --tenant or --prefix",
        f"usage --tenant acme --prefix {alpha['prefix']}": "either --tenant or --prefix",
    }
    for command, expected in usages.items():
        (proc,) = op.run(command, code=2)
        assert expected in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_dead_letters_are_readable(database_url: str, redis_namespace: str, tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, REDIS_NAMESPACE=redis_namespace)
    op = Operator(env, tmp_path)
    client = redis.Redis.from_url(op.env["REDIS_URL"])
    shards = shard_keys(op.env["REDIS_NAMESPACE"])
    try:
        assert op.out("audit --dead-letter") == "no dead letters\n"
        event = {"v": 1, "request_id": "refused-1", "prompt": {"request_body": "secret"}}
        client.xadd(shards[3].dead, {"e": json.dumps(event), "why": "refused: bad", "from": "1-0"})
        time.sleep(0.01)  # entry ids are milliseconds: the second is newer
        client.xadd(shards[9].dead, {"e": b"\xff garbage", "why": "not an audit event: not JSON"})
        header, *lines = op.out("audit --dead-letter").splitlines()
        assert header.split() == ["TIME", "SHARD", "ENTRY", "REQUEST", "ID", "WHY"]
        assert [line.split()[1] for line in lines] == ["9", "3"]  # newest first
        assert "refused-1" in lines[1] and "refused: bad" in lines[1]
        garbage, refused = (
            json.loads(x) for x in op.out("audit --dead-letter --jsonl").split("\n")[:2]
        )
        assert refused["request_id"] == "refused-1" and refused["from"] == "1-0"
        assert refused["event"] == {"v": 1, "request_id": "refused-1"}  # no prompt shown
        assert garbage["event"] is None and garbage["raw"].endswith("garbage")
        assert len(op.json("audit --dead-letter --json --limit 1")) == 1
        assert "secret" not in "".join(op.printed)
    finally:
        keys = list(client.scan_iter(match=f"{op.env['REDIS_NAMESPACE']}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_a_table_shows_the_newest_hundred_and_machine_formats_everything(
    operator: tuple[Operator, str],
) -> None:
    op, url = operator
    op.out("list-tenants")  # any command applies the migrations first
    many = [
        RequestRecord(
            request_id=f"m{n:03d}",
            surface="api",
            method="GET",
            path="/api/tags",
            status=401,
            time=T0 + timedelta(seconds=n),
        )
        for n in range(150)
    ]

    async def go() -> None:
        async with database(Settings(database_url=url)):
            assert (await store(many, postgres=not url.startswith("sqlite"))).inserted == 150
        await Tortoise.close_connections()

    asyncio.run(go())
    (table,) = op.run("audit")
    assert len(table.stdout.splitlines()) == 1 + 100 and "--limit N for more" in table.stderr
    assert len(op.out("audit --jsonl").splitlines()) == 150
    assert len(op.json("audit --json")) == 150
    assert len(op.out("audit --csv").splitlines()) == 1 + 150
    (limited,) = op.run("audit --limit 120")
    assert len(limited.stdout.splitlines()) == 1 + 120 and limited.stderr == ""
