"""`.env.example`: every variable, each with its one-line comment, safe to copy as it is."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import FILE_VARIABLES, file_variable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
ASSIGNMENT = re.compile(r"^#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=")

# The README's table, and the settings this session adds, and compose's own.
EXPECTED = [
    "DATABASE_URL",
    "DATABASE_URL_FILE",
    "REDIS_URL",
    "REDIS_CLUSTER",
    "REDIS_NAMESPACE",
    "OLLAMA_URL",
    "OLLAMA_TOKEN",
    "OLLAMA_BACKENDS",
    "OLLAMA_BACKENDS_FILE",
    "GATEWAY_HOST",
    "GATEWAY_PORT",
    "GATEWAY_WORKERS",
    "KEY_CACHE_TTL",
    "KEY_CACHE_SIZE",
    "KEY_NEGATIVE_CACHE_TTL",
    "KEY_VERIFY_CONCURRENCY",
    "BUDGET_TIMEZONE",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "UPSTREAM_CONNECT_TIMEOUT",
    "UPSTREAM_READ_TIMEOUT",
    "MAX_BODY_BYTES",
    "LEASE_TTL",
    "OUTPUT_RESERVE_STEP",
    "NON_STREAM_OUTPUT_CAP",
    "BACKEND_PROBE_INTERVAL",
    "MAX_KEEP_ALIVE",
    "MAX_NUM_CTX",
    "ALLOW_CLOUD_MODELS",
    "OUTPUT_RESERVE_STEP",
    "NON_STREAM_OUTPUT_CAP",
    "BACKEND_QUEUE_TIMEOUT",
    "METRICS_PORT",
    "METRICS_TOKEN",
    "CORS_ORIGINS",
    "PROXIES_COUNT",
    "GRACEFUL_SHUTDOWN_TIMEOUT",
    "REQUEST_TIMEOUT",
    "AUDIT_QUEUE_MAX_BYTES",
    "POSTGRES_PASSWORD",
    "GATEWAY_DOMAIN",
    "OLLAMA_GPU_COUNT",
    "COMPOSE_FILE",
]


def _lines() -> list[str]:
    return EXAMPLE.read_text().splitlines()


def _variables() -> dict[str, int]:
    """Each variable set or shown (commented out), with its line number."""
    out: dict[str, int] = {}
    for i, line in enumerate(_lines()):
        found = ASSIGNMENT.match(line)
        if found:
            assert found.group(1) not in out, f"{found.group(1)} listed twice"
            out[found.group(1)] = i
    return out


def test_lists_every_variable() -> None:
    missing = set(EXPECTED) - set(_variables())
    assert not missing


def test_lists_every_variable_the_settings_read() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "config").rglob("*.py"))
    read = set(re.findall(r"[\"']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)[\"']", source))
    assert read, "no variable names found in config/"
    # NAME_FILE names are built, not written out: take them from where the settings build them.
    read |= {file_variable(name) for name in FILE_VARIABLES}
    missing = read - set(_variables())
    assert not missing, sorted(missing)


def test_each_variable_has_a_one_line_comment_above_it() -> None:
    lines = _lines()
    for name, i in _variables().items():
        above = lines[i - 1]
        assert above.startswith("# ") and not ASSIGNMENT.match(above), name
        assert len(above) <= 110, f"{name}: comment longer than a line"


def test_compose_only_variables_are_marked() -> None:
    lines = _lines()
    for name in ("POSTGRES_PASSWORD", "GATEWAY_DOMAIN", "OLLAMA_GPU_COUNT", "COMPOSE_FILE"):
        assert lines[_variables()[name] - 1].startswith("# [compose]"), name


def test_only_what_production_needs_is_set_and_no_value_carries_a_comment() -> None:
    active = [ln for ln in _lines() if ln and not ln.startswith("#")]
    assert [ln.split("=", 1)[0] for ln in active] == ["GATEWAY_DOMAIN", "POSTGRES_PASSWORD"]
    assert all("#" not in ln for ln in active)
    assert "POSTGRES_PASSWORD=" in active  # empty: compose refuses to start until it is set
