"""Typed settings, read from the environment (and `.env`) once, with clear errors."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.dotenv import read_dotenv
from config.durations import parse_duration
from config.redis_target import EXPECTED as REDIS_EXPECTED
from config.redis_target import RedisTarget, RedisUrlError, redis_target

T = TypeVar("T")

DEFAULT_DATABASE_URL = "sqlite://neuronetz-gateway.sqlite3"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Backend:
    """One Ollama server the gateway relays to, and how it shares load with the others."""

    name: str
    url: str
    token: str | None = None
    weight: float = 1.0  # its share of the requests in flight, relative to its tier's others
    max_concurrent: int | None = None  # requests in flight at once; None: no cap
    group: int | None = None  # priority tier, lower first; None: its position in the list

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return (
            f"Backend(name={self.name!r}, url={self.url!r}, token={token}, weight={self.weight}, "
            f"max_concurrent={self.max_concurrent}, group={self.group})"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway can be configured with; build one in tests directly."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_cluster: bool = False  # REDIS_CLUSTER: REDIS_URL names a node of a Redis Cluster
    redis_namespace: str = "nzgw"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    key_cache_ttl: float = 30.0
    key_cache_size: int = 10_000
    negative_cache_ttl: float = 5.0
    verify_concurrency: int = 2
    backends: tuple[Backend, ...] = field(
        default_factory=lambda: (Backend("ollama", DEFAULT_OLLAMA_URL),)
    )
    budget_timezone: str = "UTC"
    log_format: str = "auto"  # json, text, or auto: text on a terminal, JSON lines otherwise
    log_level: str = "INFO"
    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 600.0
    max_body_bytes: int = 10 * 1024 * 1024
    lease_ttl: float = 900.0
    output_reserve_step: int = 512  # output tokens a stream reserves at a time
    non_stream_output_cap: int = 4096  # the cap of an uncapped non-streamed generation
    audit_queue_max_bytes: int | None = 256 * 1024 * 1024  # then 503, never a lost event
    backend_probe_interval: float = 10.0
    audit_flush_interval: float = 1.0
    max_keep_alive: float | None = 1800.0  # seconds; None: no cap
    max_num_ctx: int | None = None
    allow_cloud_models: bool = False
    request_timeout: float = 30.0  # seconds a client has to send its headers and body
    metrics_port: int | None = None  # a separate listener for /metrics (never the public one)
    metrics_host: str | None = None  # where it listens (default: GATEWAY_HOST)
    metrics_token: str | None = None  # /metrics on the main port, behind this Bearer token
    metrics_dir: str | None = None  # multiprocess files (set by serve for several workers)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed; empty: CORS off
    proxies_count: int = 0  # trusted proxy hops in front (Caddy: 1) for the client address
    graceful_shutdown_timeout: float = 10.0  # seconds in-flight requests get at a stop
    debug_headers: bool = False  # x-gateway-worker on every response (the worker's pid)
    backend_queue_timeout: float = 0.0  # seconds a request waits when every backend is full

    def __repr__(self) -> str:
        secret = {"database_url", "redis_url", "metrics_token"}
        shown = ", ".join(
            f"{f}=***" if f in secret and getattr(self, f) else f"{f}={getattr(self, f)!r}"
            for f in self.__dataclass_fields__
        )
        return f"Settings({shown})"

    @property
    def tz(self) -> ZoneInfo:
        """The time zone in which daily and monthly budgets reset."""
        return ZoneInfo(self.budget_timezone)

    @property
    def redis(self) -> RedisTarget | None:
        """Where Redis is (one server or a cluster's startup nodes); None without REDIS_URL."""
        if self.redis_url is None:
            return None
        return redis_target(self.redis_url, cluster=self.redis_cluster)

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL (else SQLite)."""
        return self.database_url.startswith(("postgres://", "postgresql://"))

    def with_(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Read the settings; raise SettingsError naming the first bad variable."""
        env: dict[str, str] = dict(read_dotenv(dotenv)) if dotenv is not None else {}
        env.update(os.environ if environ is None else environ)
        return _parse(_with_files(env))


# Variables whose value may hold a secret (a password in a URL, a token): never echoed.
SECRET_VARIABLES = frozenset(
    {"DATABASE_URL", "REDIS_URL", "OLLAMA_TOKEN", "OLLAMA_BACKENDS", "METRICS_TOKEN"}
)


# Secrets may come from files (Docker secrets): NAME_FILE holds the path of NAME's value.
FILE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "OLLAMA_TOKEN", "OLLAMA_BACKENDS", "METRICS_TOKEN")


def file_variable(name: str) -> str:
    """The variable naming a file that holds NAME's value (NAME_FILE)."""
    return f"{name}_FILE"


def _with_files(env: Mapping[str, str]) -> dict[str, str]:
    """The environment with each NAME_FILE read into NAME (setting both is a mistake)."""
    out = dict(env)
    for name in FILE_VARIABLES:
        variable = file_variable(name)
        path = env.get(variable, "").strip()
        if not path:
            continue
        if env.get(name, "").strip():
            raise SettingsError(f"{name} and {variable} are both set: set one of them")
        try:
            out[name] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{variable}={path!r}: cannot read it ({exc.strerror})") from exc
    return out


def _get(env: Mapping[str, str], name: str, conv: Callable[[str], T], default: T, what: str) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return conv(raw)
    except (ValueError, TypeError) as exc:
        if name in SECRET_VARIABLES:
            shown = f"{name} is invalid (its value is not shown: it may hold a secret)"
        else:
            shown = f"{name}={raw!r} is invalid"
        raise SettingsError(f"{shown}: expected {what}") from exc


def _namespace(raw: str) -> str:
    if not raw.replace("-", "").replace("_", "").isalnum():
        raise ValueError(raw)
    return raw


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(raw)
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError(raw)
    return value


def _database_url(raw: str) -> str:
    if not raw.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ValueError(raw)
    return raw


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw.rstrip("/")


def _zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(raw) from exc
    return raw


def _choice(*options: str) -> Callable[[str], str]:
    def conv(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(raw)
        return raw.lower()

    return conv


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("short")
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and urlsplit(origin).scheme not in ("http", "https"):
            raise ValueError(raw)
    return origins


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def export_metrics_dir(path: str) -> None:
    """Tell prometheus-client (in this process and the workers it starts) where to write."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def _bytes_or_none(raw: str) -> int | None:
    if raw.lower() in ("none", "off"):
        return None
    return _positive_int(raw)


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _cap_seconds(raw: str) -> float | None:
    """A duration cap: "30m", "1h", a number of seconds; "none" or "off" for no cap."""
    if raw.lower() in ("none", "off"):
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = parse_duration(raw)
    if seconds < 0:
        raise ValueError(raw)
    return seconds


BACKEND_FIELDS = ("name", "url", "token", "weight", "max_concurrent", "group")
BACKENDS_EXPECTED = (
    'a non-empty JSON list of {"name", "url", "token"?, "weight"?, "max_concurrent"?, '
    '"group"?} with unique names and http(s) URLs'
)


class BackendsError(ValueError):
    """What is wrong with OLLAMA_BACKENDS, in words that never quote a token or the value."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _backend(i: int, item: object) -> Backend:
    """One entry of OLLAMA_BACKENDS; errors name the entry by position, never by its values."""
    where = f"entry {i + 1}"
    if not isinstance(item, dict):
        raise BackendsError(f"{where} is not a JSON object")
    unknown = sorted(str(k) for k in item if k not in BACKEND_FIELDS)
    if unknown:
        raise BackendsError(
            f"{where} has unknown field(s) {', '.join(unknown)} (known: {', '.join(BACKEND_FIELDS)})"
        )
    url, token, name = item.get("url"), item.get("token"), item.get("name")
    if not isinstance(url, str):
        raise BackendsError(f'{where} needs a "url" string')
    try:
        url = _http_url(url)
    except ValueError:
        raise BackendsError(f'{where}: "url" must be an http:// or https:// URL') from None
    if token is not None and not isinstance(token, str):
        raise BackendsError(f'{where}: "token" must be a string')
    if name is not None and not isinstance(name, str | int):
        raise BackendsError(f'{where}: "name" must be a string')
    weight = item.get("weight", 1)
    if not _is_number(weight) or not math.isfinite(weight) or weight <= 0:
        raise BackendsError(f'{where}: "weight" must be a positive number')
    cap = item.get("max_concurrent")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0):
        raise BackendsError(f'{where}: "max_concurrent" must be a positive integer')
    group = item.get("group")
    if group is not None and (not isinstance(group, int) or isinstance(group, bool)):
        raise BackendsError(f'{where}: "group" must be an integer')
    return Backend(
        name=str(name or f"backend-{i + 1}"),
        url=url,
        token=token or None,
        weight=float(weight),
        max_concurrent=cap,
        group=group,
    )


def _backends(raw: str) -> tuple[Backend, ...]:
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BackendsError(
            f"it is not valid JSON (line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(items, list) or not items:
        raise BackendsError("it must be a non-empty JSON list")
    out = [_backend(i, item) for i, item in enumerate(items)]
    names = [b.name for b in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BackendsError(f"the name(s) {', '.join(repeated)} appear more than once")
    return tuple(out)


def _backends_from(env: Mapping[str, str]) -> tuple[Backend, ...] | None:
    """OLLAMA_BACKENDS, or None when unset; its value is never shown (tokens)."""
    raw = env.get("OLLAMA_BACKENDS", "").strip()
    if not raw:
        return None
    try:
        return _backends(raw)
    except BackendsError as exc:
        raise SettingsError(
            f"OLLAMA_BACKENDS is invalid (its value is not shown: it may hold a secret): {exc}; "
            f"expected {BACKENDS_EXPECTED}"
        ) from None


def _non_negative_seconds(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError(raw)
    return value


def _redis_from(env: Mapping[str, str]) -> tuple[str | None, bool]:
    """REDIS_URL and whether it names a Redis Cluster (its scheme, or REDIS_CLUSTER)."""
    url = env.get("REDIS_URL", "").strip() or None
    flag = _get(env, "REDIS_CLUSTER", _bool, False, "true or false (1 or 0)")
    if url is None:
        if flag:
            raise SettingsError(
                "REDIS_CLUSTER is set but REDIS_URL is not: set REDIS_URL to a node of the "
                "cluster (redis://host:port) or to redis+cluster://host:port,host:port"
            )
        return None, False
    try:
        target = redis_target(url, cluster=flag)
    except RedisUrlError as exc:
        also = " (REDIS_CLUSTER is set)" if flag else ""
        raise SettingsError(
            f"REDIS_URL is invalid (its value is not shown: it may hold a secret){also}: {exc}; "
            f"expected {REDIS_EXPECTED}"
        ) from None
    return url, target.cluster


def _parse(env: Mapping[str, str]) -> Settings:
    d = Settings()
    redis_url, redis_cluster = _redis_from(env)
    default_workers = (os.cpu_count() or 1) if redis_url else 1
    workers = _get(env, "GATEWAY_WORKERS", _positive_int, default_workers, "a positive integer")
    if workers > 1 and redis_url is None:
        raise SettingsError(
            f"GATEWAY_WORKERS={workers} needs REDIS_URL: without Redis, limits and key "
            "revocation live in one process, so only one worker can run"
        )
    backends = _backends_from(env)
    if backends is None:
        url = _get(env, "OLLAMA_URL", _http_url, DEFAULT_OLLAMA_URL, "an http(s):// URL")
        token = env.get("OLLAMA_TOKEN", "").strip() or None
        backends = (Backend("ollama", url, token),)
    return Settings(
        database_url=_get(
            env, "DATABASE_URL", _database_url, d.database_url, "a postgres:// or sqlite:// URL"
        ),
        redis_url=redis_url,
        redis_cluster=redis_cluster,
        redis_namespace=_get(
            env, "REDIS_NAMESPACE", _namespace, d.redis_namespace, "letters, digits, - or _"
        ),
        host=_get(env, "GATEWAY_HOST", str, d.host, "a host name or address"),
        port=_get(env, "GATEWAY_PORT", _port, d.port, "a port number 1-65535"),
        workers=workers,
        key_cache_ttl=_get(env, "KEY_CACHE_TTL", _positive_float, d.key_cache_ttl, "seconds > 0"),
        key_cache_size=_get(
            env, "KEY_CACHE_SIZE", _positive_int, d.key_cache_size, "a positive integer"
        ),
        negative_cache_ttl=_get(
            env, "KEY_NEGATIVE_CACHE_TTL", _positive_float, d.negative_cache_ttl, "seconds > 0"
        ),
        verify_concurrency=_get(
            env, "KEY_VERIFY_CONCURRENCY", _positive_int, d.verify_concurrency, "an integer > 0"
        ),
        backends=backends,
        budget_timezone=_get(env, "BUDGET_TIMEZONE", _zone, d.budget_timezone, "an IANA zone"),
        log_format=_get(
            env, "LOG_FORMAT", _choice("json", "text", "auto"), d.log_format, "json, text or auto"
        ),
        log_level=_get(
            env,
            "LOG_LEVEL",
            _choice("debug", "info", "warning", "error"),
            "info",
            "debug, info, warning or error",
        ).upper(),
        upstream_connect_timeout=_get(
            env,
            "UPSTREAM_CONNECT_TIMEOUT",
            _positive_float,
            d.upstream_connect_timeout,
            "seconds > 0",
        ),
        upstream_read_timeout=_get(
            env, "UPSTREAM_READ_TIMEOUT", _positive_float, d.upstream_read_timeout, "seconds > 0"
        ),
        max_body_bytes=_get(
            env, "MAX_BODY_BYTES", _positive_int, d.max_body_bytes, "a positive integer"
        ),
        lease_ttl=_get(env, "LEASE_TTL", _positive_float, d.lease_ttl, "seconds > 0"),
        output_reserve_step=_get(
            env, "OUTPUT_RESERVE_STEP", _positive_int, d.output_reserve_step, "a positive integer"
        ),
        non_stream_output_cap=_get(
            env,
            "NON_STREAM_OUTPUT_CAP",
            _positive_int,
            d.non_stream_output_cap,
            "a positive integer",
        ),
        audit_queue_max_bytes=_get(
            env,
            "AUDIT_QUEUE_MAX_BYTES",
            _bytes_or_none,
            d.audit_queue_max_bytes,
            "a positive number of bytes, or none",
        ),
        backend_probe_interval=_get(
            env,
            "BACKEND_PROBE_INTERVAL",
            _positive_float,
            d.backend_probe_interval,
            "seconds > 0",
        ),
        max_keep_alive=_get(
            env,
            "MAX_KEEP_ALIVE",
            _cap_seconds,
            d.max_keep_alive,
            'a duration such as "30m" or "2h", seconds, or none',
        ),
        max_num_ctx=_get(env, "MAX_NUM_CTX", _positive_int, None, "a positive integer"),
        allow_cloud_models=_get(env, "ALLOW_CLOUD_MODELS", _bool, False, "true or false"),
        request_timeout=_get(
            env, "REQUEST_TIMEOUT", _positive_float, d.request_timeout, "seconds > 0"
        ),
        metrics_port=_get(env, "METRICS_PORT", _port, None, "a port number 1-65535"),
        metrics_host=_get(env, "METRICS_HOST", str, None, "a host name or address"),
        metrics_token=_get(env, "METRICS_TOKEN", _token, None, "at least 16 characters"),
        metrics_dir=_get(env, "PROMETHEUS_MULTIPROC_DIR", str, None, "a directory"),
        cors_origins=_get(
            env, "CORS_ORIGINS", _origins, (), "comma-separated http(s) origins, or *"
        ),
        proxies_count=_get(env, "PROXIES_COUNT", _count, 0, "a whole number >= 0"),
        graceful_shutdown_timeout=_get(
            env,
            "GRACEFUL_SHUTDOWN_TIMEOUT",
            _positive_float,
            d.graceful_shutdown_timeout,
            "seconds > 0",
        ),
        debug_headers=_get(env, "DEBUG_HEADERS", _bool, False, "true or false"),
        backend_queue_timeout=_get(
            env,
            "BACKEND_QUEUE_TIMEOUT",
            _non_negative_seconds,
            d.backend_queue_timeout,
            "seconds >= 0 (0: answer 503 at once when every backend is full)",
        ),
    )
