"""The admin CLI as an operator runs it: the real console script against PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from tests.server.admin.operator import KEY_LINE, LIMITS, Operator, base_env, query, spawn


def test_operator_session(operator: tuple[Operator, str]) -> None:
    op, url = operator
    created = op.out(
        "create-tenant --name acme --rpm 60 --tpm 100000 --max-concurrent 4 --daily-tokens 1000 "
        "--monthly-tokens 20000 --total-tokens 500000 --models llama3,qwen2.5 --log-prompts "
        "--prompt-ttl-days 3"
    )
    assert created.startswith("created tenant acme")
    prod = op.out(
        "create-key --tenant acme --name prod-server-1 --rpm 30 --max-concurrent 2 "
        "--models llama3 --expires-days 30"
    )
    keys = [line for line in prod.splitlines() if KEY_LINE.fullmatch(line)]
    assert len(keys) == 1 and len(KEY_LINE.findall(prod)) == 1, prod
    full_key, prefix = keys[0], keys[0][:11]
    assert f"prefix {prefix}" in prod and "only this once" in prod
    dev = op.out("create-key --tenant acme --name 123 --log-prompts --prompt-ttl-days 1")
    dev_prefix = KEY_LINE.findall(dev)[0][:11]

    table, listed, tenants_table, tenants = op.run(
        "list-keys --tenant acme",
        "list-keys --tenant acme --json",
        "list-tenants",
        "list-tenants --json",
    )
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["PREFIX", "NAME", "STATUS", "RPM"]
    assert rows[0].split()[:4] == [prefix, "prod-server-1", "active", "30"]
    assert rows[1].split()[:5] == [dev_prefix, "123", "active", "60*", "100000*"]
    assert "inherited" in rows[-1]
    first, second = json.loads(listed.stdout)
    assert (first["name"], second["name"]) == ("prod-server-1", "123")
    assert first["prefix"] == prefix and first["status"] == "active"
    assert first["limits"] == {
        "rpm": 30,
        "tpm": 100000,
        "max_concurrent": 2,
        "daily_tokens": 1000,
        "monthly_tokens": 20000,
        "total_tokens": 500000,
    }
    assert first["inherited"] == ["tpm", "daily_tokens", "monthly_tokens", "total_tokens"]
    assert first["models"] == ["llama3:latest"] and first["key_models"] == ["llama3"]
    assert first["expires_at"] and first["last_used_at"] is None and first["log_prompts"] is True
    assert second["prompt_ttl_days"] == 1 and second["inherited"] == list(LIMITS)
    assert not any("hash" in field for field in first)
    assert tenants_table.stdout.splitlines()[1].split()[:3] == ["acme", "active", "60"]
    (tenant,) = json.loads(tenants.stdout)
    assert tenant["name"] == "acme" and tenant["active_keys"] == 2
    assert tenant["models"] == ["llama3", "qwen2.5"] and tenant["limits"]["max_concurrent"] == 4

    op.run(
        f"set-limits --prefix {prefix} --rpm none --models none",
        "set-limits --tenant acme --max-concurrent 1",  # below the key's 2: allowed
    )
    today = datetime.now(UTC).date()
    query(
        url,
        "INSERT INTO usage_daily (tenant_id, key_id, day, requests, prompt_tokens, "
        f"completion_tokens) VALUES ({tenant['id']}, {first['id']}, '{today}', 3, 200, 100)",
    )
    by_tenant, by_key, _, _ = op.run(
        "usage --tenant acme",
        f"usage --prefix {prefix} --json",
        "disable-tenant --name acme",
        f"disable-key --prefix {dev_prefix}",
    )
    assert "usage of tenant acme" in by_tenant.stdout
    day_row = by_tenant.stdout.splitlines()[2].split()
    assert day_row == ["day", "3", "200", "100", "300", "1000", "700"]
    report = json.loads(by_key.stdout)
    assert report["key"] == prefix and report["tenant"] == "acme" and report["timezone"] == "UTC"
    assert report["today"] == today.isoformat()
    assert report["month"] == {
        "requests": 3,
        "prompt_tokens": 200,
        "completion_tokens": 100,
        "tokens": 300,
        "budget": 20000,
        "remaining": 19700,
    }

    listed, tenants = op.run("list-keys --tenant acme --json", "list-tenants --json")
    first, second = json.loads(listed.stdout)
    assert first["limits"]["rpm"] == 60 and first["limits"]["max_concurrent"] == 1
    assert {"rpm", "max_concurrent"} <= set(first["inherited"])
    assert first["key_models"] is None and first["models"] == ["llama3:latest", "qwen2.5:latest"]
    assert (first["status"], second["status"]) == ("active", "disabled")
    assert [(t["name"], t["status"]) for t in json.loads(tenants.stdout)] == [("acme", "disabled")]

    op.run("enable-tenant --name acme", f"enable-key --prefix {dev_prefix}")
    subscriber = _subscribe(op.env)
    assert f"key {prefix} (prod-server-1) revoked" in op.out(f"revoke-key --prefix {prefix}")
    if subscriber is not None:
        message = subscriber.get_message(ignore_subscribe_messages=True, timeout=2.0)
        assert message is not None
        assert json.loads(message["data"]) == {"kind": "key", "id": first["id"]}
        subscriber.close()
    migrated, listed, tenants = op.run(
        "migrate", "list-keys --tenant acme --json", "list-tenants --json"
    )
    assert migrated.stdout.strip() == "database is up to date"
    first, second = json.loads(listed.stdout)
    assert first["status"] == "revoked" and first["revoked_at"] is not None
    assert second["status"] == "active"
    assert [(t["status"], t["active_keys"]) for t in json.loads(tenants.stdout)] == [("active", 1)]

    everything = "".join(op.printed)
    hashes = [row[0] for row in query(url, "SELECT key_hash FROM api_keys")]
    assert len(hashes) == 2 and not any(h in everything for h in hashes)
    assert "argon2" not in everything
    assert everything.count(full_key) == 1  # shown once, by create-key


def test_help_and_version_as_typed(tmp_path: Path) -> None:
    op = Operator(base_env(), tmp_path)
    overview = op.out("--help")
    assert "create-key" in overview and "create_key" not in overview
    assert op.out("--version").startswith("neuronetz-gateway ")
    key_help = op.out("create-key --help")
    assert "--max-concurrent" in key_help and "--tenant" in key_help


def test_mistakes_exit_1_with_one_line(database_url: str, tmp_path: Path) -> None:
    op = Operator(base_env(DATABASE_URL=database_url), tmp_path)
    op.out("create-tenant --name acme --rpm 60 --daily-tokens 1000")
    prefix = KEY_LINE.findall(op.out("create-key --tenant acme --name prod-server-1"))[0][:11]
    op.out(f"revoke-key --prefix {prefix}")
    mistakes = {
        "create-tenant --name acme": "a tenant named 'acme' already exists",
        "create-key --tenant nope --name x": "no tenant named 'nope'",
        "create-key --tenant acme --name prod-server-1": "already has a key named 'prod-server-1'",
        "create-tenant --name widgets --rpm lots": "--rpm needs a whole number",
        "create-tenant --name widgets --tpm -5": "--tpm needs a whole number",
        "revoke-key --prefix nz_00000000": "no key with prefix nz_00000000",
        "disable-key --prefix not-a-prefix": "is not a key prefix",
        "create-key --tenant acme --name greedy --rpm 61": "rpm 61 is above tenant acme's rpm 60",
        f"set-limits --prefix {prefix} --daily-tokens 1001": "daily_tokens 1001 is above tenant",
        f"enable-key --prefix {prefix}": "revocation is final",
    }
    for error, expected in zip(op.fails(*mistakes), mistakes.values()):
        assert expected in error, error
    usages = {
        "no-such-command": "no command 'no-such-command'",
        "create-tenant --name widgets --rmp 5": "no option --rmp",
        "create-key --tenant acme": "--name is required",
        "create-key --tenant acme --name": "--name needs a value",
        f"set-limits --tenant acme --prefix {prefix} --rpm 1": "either --tenant or --prefix",
    }
    for command, expected in usages.items():
        (usage_error,) = op.run(command, code=2)
        assert usage_error.stdout == "" and expected in usage_error.stderr, usage_error.stderr
        assert len(usage_error.stderr.splitlines()) == 1
    tenants = op.json("list-tenants --json")  # nothing half-made by a refused command
    assert [(t["name"], t["active_keys"]) for t in tenants] == [("acme", 0)]


def _subscribe(env: dict[str, str]) -> Any:
    if "REDIS_URL" not in env:
        return None
    pubsub = redis.Redis.from_url(env["REDIS_URL"]).pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(f"{env['REDIS_NAMESPACE']}:invalidate")
    pubsub.get_message(timeout=1.0)
    return pubsub


def test_bad_settings_and_unreachable_databases(tmp_path: Path) -> None:
    commands: Sequence[tuple[str, dict[str, str], str]] = [
        ("list-tenants", {"DATABASE_URL": "mysql://x"}, "DATABASE_URL is invalid"),
        ("list-tenants", {"BUDGET_TIMEZONE": "Mars/Base"}, "BUDGET_TIMEZONE"),
        ("list-tenants", {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x"}, "database: "),
        ("migrate", {"DATABASE_URL": "sqlite:///nonexistent/dir/x.db"}, "cannot open the SQLite"),
    ]
    procs = [spawn(command, base_env(**env), tmp_path) for command, env, _ in commands]
    for (command, _, expected), proc in zip(commands, procs):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and out == "", (command, out, err)
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
        assert expected in err, err
    # with nothing set up, the embedded default (a SQLite file in the working directory) works
    fresh = Operator(base_env(), tmp_path)
    assert fresh.out("create-tenant --name solo").startswith("created tenant solo")
    assert (tmp_path / "neuronetz-gateway.sqlite3").exists()
