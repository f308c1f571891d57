"""Settings: defaults, every variable parsed, every bad value named in one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Backend, Settings, SettingsError


def test_embedded_defaults() -> None:
    s = Settings.from_env({}, dotenv=None)
    assert s.database_url.startswith("sqlite://")
    assert s.redis_url is None and s.workers == 1
    assert s.backends == (Backend("ollama", "http://127.0.0.1:11434"),)
    assert s.budget_timezone == "UTC"


def test_values_are_read() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u@h/db",
            "REDIS_URL": "redis://h:6379/1",
            "GATEWAY_WORKERS": "3",
            "GATEWAY_PORT": "9000",
            "KEY_CACHE_TTL": "2.5",
            "BUDGET_TIMEZONE": "Europe/Berlin",
            "OLLAMA_BACKENDS": '[{"name":"a","url":"http://a:11434/","token":"t"},{"url":"http://b"}]',
            "LOG_FORMAT": "TEXT",
        },
        dotenv=None,
    )
    assert (s.workers, s.port, s.key_cache_ttl, s.log_format) == (3, 9000, 2.5, "text")
    assert s.backends == (Backend("a", "http://a:11434", "t"), Backend("backend-2", "http://b"))
    assert s.tz.key == "Europe/Berlin" and s.is_postgres


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_PORT", "abc"),
        ("GATEWAY_WORKERS", "0"),
        ("KEY_CACHE_TTL", "-1"),
        ("KEY_CACHE_SIZE", "many"),
        ("BUDGET_TIMEZONE", "Mars/Olympus"),
        ("OLLAMA_URL", "ftp://x"),
        ("OLLAMA_BACKENDS", "[]"),
        ("OLLAMA_BACKENDS", "{not json"),
        ("OLLAMA_BACKENDS", '[{"name":"a","url":"http://a"},{"name":"a","url":"http://b"}]'),
        ("LOG_FORMAT", "xml"),
        ("UPSTREAM_READ_TIMEOUT", "0"),
        ("MAX_BODY_BYTES", "1.5"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0"} if name != "REDIS_URL" else {}
    env[name] = value
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env, dotenv=None)
    assert str(info.value).startswith((f"{name}=", f"{name} is invalid"))
    assert "\n" not in str(info.value)


def test_workers_without_redis_are_refused_with_the_reason() -> None:
    with pytest.raises(SettingsError, match="needs REDIS_URL"):
        Settings.from_env({"GATEWAY_WORKERS": "2"}, dotenv=None)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\nGATEWAY_PORT=9100\nexport GATEWAY_HOST="0.0.0.0"\n')
    s = Settings.from_env({"GATEWAY_PORT": "9200"}, dotenv=dotenv)
    assert (s.host, s.port) == ("0.0.0.0", 9200)


def test_backend_repr_never_shows_the_token() -> None:
    assert "s3cret" not in repr(Backend("a", "http://a", "s3cret"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://admin:hunter2-secret@db/x"),
        ("REDIS_URL", "http://:hunter2-secret@redis:6379"),
        ("OLLAMA_BACKENDS", '[{"url":"ftp://x","token":"hunter2-secret"}]'),
    ],
)
def test_errors_never_show_a_value_that_may_hold_a_secret(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value}, dotenv=None)
    message = str(refused.value)
    assert name in message and "expected" in message and "hunter2" not in message


def test_governance_settings() -> None:
    s = Settings.from_env(
        {"MAX_KEEP_ALIVE": "2h", "MAX_NUM_CTX": "8192", "ALLOW_CLOUD_MODELS": "true"},
        dotenv=None,
    )
    assert (s.max_keep_alive, s.max_num_ctx, s.allow_cloud_models) == (7200.0, 8192, True)
    assert Settings.from_env({}, dotenv=None).max_keep_alive == 1800.0
    assert Settings.from_env({"MAX_KEEP_ALIVE": "none"}, dotenv=None).max_keep_alive is None
    assert Settings.from_env({"MAX_KEEP_ALIVE": "90"}, dotenv=None).max_keep_alive == 90.0
    for name, bad in (
        ("MAX_KEEP_ALIVE", "soon"),
        ("MAX_NUM_CTX", "0"),
        ("ALLOW_CLOUD_MODELS", "maybe"),
    ):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad}, dotenv=None)


def test_a_dotenv_is_read_as_users_write_it(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# the database\n"
        "export DATABASE_URL=postgres://u@db/gw  # the production one\n"
        "GATEWAY_PORT='9001'\n"
        'OLLAMA_TOKEN="tok en"\n'
        "CORS_ORIGINS=https://a.example,https://b.example # two sites\n"
        'OLLAMA_BACKENDS=\'[{"name": "a",\n  "url": "http://a:11434"}]\'\n'
    )
    s = Settings.from_env({}, dotenv=dotenv)
    assert s.database_url == "postgres://u@db/gw" and s.port == 9001
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.backends == (Backend("a", "http://a:11434"),)


def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("postgres://u:pw@db/gw\n")
    s = Settings.from_env({"DATABASE_URL_FILE": str(tmp_path / "db")}, dotenv=None)
    assert s.database_url == "postgres://u:pw@db/gw" and "pw" not in repr(s)
    with pytest.raises(SettingsError, match="both set"):
        Settings.from_env(
            {"DATABASE_URL": "sqlite://x", "DATABASE_URL_FILE": str(tmp_path / "db")}, dotenv=None
        )
    with pytest.raises(SettingsError, match="METRICS_TOKEN_FILE"):
        Settings.from_env({"METRICS_TOKEN_FILE": str(tmp_path / "missing")}, dotenv=None)
