"""Bring up what the bench measures: the fake Ollama, Redis, a database, the gateway, the relays."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.pgdb import create_database
from bench.procs import BenchError, Child, Supervisor, free_port, run, wait_http
from bench.procstat import tree
from bench.redisbox import RedisBox, open_redis
from bench.scenarios import Target

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).parent / "neuronetz-gateway")
GATEWAY_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_NAMESPACE",
    "OLLAMA_URL",
    "OLLAMA_BACKENDS",
    "OLLAMA_TOKEN",
    "GATEWAY_WORKERS",
    "GATEWAY_HOST",
    "GATEWAY_PORT",
)
HIGH = "1000000000000"  # never trips, but is set: every limit's code path runs
LIMITS = [
    "--rpm",
    "1000000000",
    "--tpm",
    HIGH,
    "--max-concurrent",
    "100000",
    "--daily-tokens",
    HIGH,
    "--monthly-tokens",
    HIGH,
    "--total-tokens",
    HIGH,
]
MODELS = ["--models", "llama3.2,all-minilm"]
AUDIT_OFF = "gateway, audit off"


@dataclass
class Stack:
    """Everything started for the run."""

    fake: Target  # the fake Ollama itself
    upstream: Target  # what the relays point at: the replay of the fake, or the fake
    redis: RedisBox
    postgres_version: str
    env: dict[str, str]  # the gateway's environment (its OLLAMA_URL is the upstream)
    key: str
    targets: list[Target] = field(default_factory=list)

    def replay_stats(self) -> dict[str, int] | None:
        """The replay's hit and miss counts (None when the relays use the fake directly)."""
        if self.upstream is self.fake:
            return None
        stats: dict[str, int] = httpx.get(self.upstream.url + "/_replay/stats", timeout=10).json()
        return stats

    def fake_config(self, **config: object) -> None:
        """Change the fake's runtime config (pace_ms, tokens, ...)."""
        httpx.post(self.fake.url + "/_fake/config", json=config, timeout=10).raise_for_status()

    def fake_reset(self) -> None:
        """Forget the fake's request records (they grow with every request) and config changes."""
        httpx.post(self.fake.url + "/_fake/reset", timeout=10).raise_for_status()


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GATEWAY_VARS}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_fake(sup: Supervisor, cpus: str | None) -> Target:
    """The fake Ollama (zero delay; the paced mode is switched on through /_fake/config)."""
    port = free_port()
    child = sup.start(
        "fake-ollama",
        [sys.executable, "-m", "tests.fake_ollama", "--port", str(port)],
        cpus=cpus,
        env=_base_env(),
        cwd=ROOT,
    )
    target = Target("fake direct", f"http://127.0.0.1:{port}", child)
    wait_http(child, target.url + "/", 30)
    return target


def start_replay(sup: Supervisor, fake: Target, cpus: str | None) -> Target:
    """bench/replay.py in front of the fake: its recorded answers at a fraction of its cost."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "replay.py"), "--port", str(port)]
    child = sup.start("replay", [*argv, "--upstream", fake.url], cpus=cpus, env=_base_env())
    target = Target("upstream direct", f"http://127.0.0.1:{port}", child)
    wait_http(child, target.url + "/_replay/stats", 30)
    return target


def gateway_env(db_url: str, redis: RedisBox, upstream: str, workers: int) -> dict[str, str]:
    """The environment `neuronetz-gateway` runs with in this bench (no .env is read: cwd).

    Every other setting is the default: an uncapped stream (the paced check's) reserves
    OUTPUT_RESERVE_STEP (512) output tokens at a time, so concurrent streams are not refused
    under the key's budgets."""
    return _base_env() | {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis.url,
        "REDIS_NAMESPACE": redis.namespace,
        "OLLAMA_URL": upstream,
        "GATEWAY_WORKERS": str(workers),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


def create_key(sup: Supervisor, env: dict[str, str]) -> str:
    """A tenant and a key with every limit set high and a model allow-list, made with the CLI."""
    run(
        [EXE, "create-tenant", "--name", "bench", *LIMITS, *MODELS],
        timeout=120,
        env=env,
        cwd=sup.workdir,
    )
    out = run(
        [EXE, "create-key", "--tenant", "bench", "--name", "bench", *LIMITS, *MODELS],
        timeout=120,
        env=env,
        cwd=sup.workdir,
    ).stdout
    keys = [w for w in out.split() if w.startswith("nz_") and len(w) > 20]
    if len(keys) != 1:
        raise BenchError("create-key printed no key (or several)")
    return keys[0]


def _wait_workers(child: Child, workers: int, timeout: float) -> list[int]:
    """The pids of the workers, once each has logged `worker started pid=N` (if the log never
    says so: the serve process with one worker, else its children)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [int(p) for p in re.findall(r"worker started pid=(\d+)", child.tail(10_000))]
        if len(pids) >= workers:
            return pids
        if not child.alive():
            raise BenchError(f"{child.name} exited:\n{child.tail()}")
        time.sleep(0.1)
    print(f"bench: {child.name} logged no 'worker started pid=N'; guessing its workers")
    return [child.pid] if workers == 1 else tree(child.pid)[1:]


def start_gateway(
    sup: Supervisor,
    env: dict[str, str],
    key: str,
    workers: int,
    cpus: str | None,
    *,
    name: str = "gateway",
    argv: list[str] | None = None,
) -> Target:
    """`neuronetz-gateway serve` (or another launcher with the same environment)."""
    port = free_port()
    argv = argv or [EXE, "serve", "--host", "127.0.0.1", "--workers", str(workers), "--no-migrate"]
    child = sup.start(name, [*argv, "--port", str(port)], cpus=cpus, env=env, cwd=sup.workdir)
    target = Target(
        name,
        f"http://127.0.0.1:{port}",
        child,
        headers={"Authorization": f"Bearer {key}"},
        uses_redis=True,
    )
    wait_http(child, target.url + "/healthz", 60)
    target.workers = _wait_workers(child, workers, 20)
    return target


def start_nolimits(
    sup: Supervisor, env: dict[str, str], key: str, workers: int, cpus: str | None
) -> Target:
    """The gateway with limits off (bench/nolimits_serve.py): what admission and settle cost."""
    argv = [sys.executable, str(ROOT / "bench" / "nolimits_serve.py"), "--workers", str(workers)]
    return start_gateway(sup, env, key, workers, cpus, name="gateway, no limits", argv=argv)


def start_auditoff(
    sup: Supervisor, env: dict[str, str], key: str, workers: int, cpus: str | None
) -> Target:
    """The gateway with its audit off (bench/auditoff_serve.py): what the audit costs."""
    argv = [sys.executable, str(ROOT / "bench" / "auditoff_serve.py"), "--workers", str(workers)]
    return start_gateway(sup, env, key, workers, cpus, name=AUDIT_OFF, argv=argv)


def start_bare_relay(
    sup: Supervisor, upstream: Target, cpus: str | None, name: str = "bare relay"
) -> Target:
    """The minimal Sanic + aiohttp relay of bench/bare_relay.py, with its own key."""
    key = "br_" + secrets.token_urlsafe(24)
    port = free_port()
    env = _base_env() | {"BENCH_RELAY_KEY_SHA256": hashlib.sha256(key.encode()).hexdigest()}
    child = sup.start(
        name,
        [
            sys.executable,
            str(ROOT / "bench" / "bare_relay.py"),
            "--port",
            str(port),
            "--upstream",
            upstream.url,
        ],
        cpus=cpus,
        env=env,
        cwd=sup.workdir,
    )
    target = Target(
        name, f"http://127.0.0.1:{port}", child, headers={"Authorization": f"Bearer {key}"}
    )
    wait_http(child, target.url + "/none", 30)  # 405 (GET) once it listens
    return target


def start_stack(
    sup: Supervisor,
    *,
    cpus_load: str | None,
    cpus_target: str | None,
    redis_url: str | None,
    redis_port: int | None,
    admin_db_url: str,
    workers: int,
    nolimits: bool,
    audit_off: bool,
    replay: bool,
) -> Stack:
    """Start the fake (and its replay), Redis, the database, the gateway and the bare relay."""
    fake = start_fake(sup, cpus_load)
    upstream = start_replay(sup, fake, cpus_load) if replay else fake
    namespace = f"nzgw-bench-{uuid.uuid4().hex[:8]}"
    redis = open_redis(sup, url=redis_url, port=redis_port, cpus=cpus_load, namespace=namespace)
    db_url, pg_version = create_database(sup, admin_db_url)
    env = gateway_env(db_url, redis, upstream.url, workers)
    run([EXE, "migrate"], timeout=120, env=env, cwd=sup.workdir)
    key = create_key(sup, env)
    stack = Stack(fake, upstream, redis, pg_version, env, key)
    stack.targets.append(start_bare_relay(sup, upstream, cpus_target))
    stack.targets.append(start_gateway(sup, env, key, workers, cpus_target))
    if nolimits and workers > 1:
        print("bench: --nolimits needs --workers 1 (its patch does not reach spawned workers)")
    elif nolimits:
        try:
            stack.targets.append(start_nolimits(sup, env, key, workers, cpus_target))
        except BenchError as exc:
            print(f"bench: the no-limits launcher did not start, row left out: {exc}")
    if audit_off and workers > 1:
        print(
            "bench: the audit-off row needs --workers 1 (its patch does not reach spawned workers)"
        )
    elif audit_off:
        try:
            stack.targets.append(start_auditoff(sup, env, key, workers, cpus_target))
        except BenchError as exc:
            print(f"bench: the audit-off launcher did not start, row left out: {exc}")
    return stack


def on_fake(sup: Supervisor, stack: Stack, workers: int, cpus: str | None) -> list[Target]:
    """The bare relay and the gateway pointed at the fake itself (for the paced streams)."""
    if stack.upstream is stack.fake:
        return [t for t in stack.targets if t.name in ("bare relay", "gateway")]
    env = stack.env | {"OLLAMA_URL": stack.fake.url}
    return [
        start_bare_relay(sup, stack.fake, cpus, name="bare relay"),
        start_gateway(sup, env, stack.key, workers, cpus, name="gateway"),
    ]
