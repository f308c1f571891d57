"""Runs the real `neuronetz-gateway` as subprocesses (serve, CLI commands) for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "neuronetz-gateway")


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def gateway_env(**values: str | None) -> dict[str, str]:
    """The process environment with gateway variables set (None removes one)."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "OLLAMA_URL", "OLLAMA_BACKENDS", "GATEWAY_WORKERS"):
        env.pop(name, None)
    env["LOG_FORMAT"] = "text"
    env["DEBUG_HEADERS"] = "true"  # x-gateway-worker: tests tell the workers apart
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one CLI command; by default fail the test when it fails."""
    proc = subprocess.run(
        [EXE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr}")
    return proc


def create_key(env: dict[str, str], tenant: str, name: str, *flags: str) -> str:
    """Create a key with the CLI and return the full key it printed once."""
    out = cli(env, "create-key", "--tenant", tenant, "--name", name, *flags).stdout
    keys = [
        w for line in out.splitlines() for w in line.split() if w.startswith("nz_") and len(w) > 20
    ]
    assert len(keys) == 1, out
    return keys[0]


def per_worker(url: str, key: str, workers: int = 2, tries: int = 400) -> dict[str, set[int]]:
    """Statuses per worker (x-gateway-worker), on fresh connections until every worker answered."""
    seen: dict[str, set[int]] = {}
    for n in range(tries):
        r = httpx.get(
            url + "/v1/usage",
            headers={"Authorization": f"Bearer {key}", "Connection": "close"},
            timeout=10,
        )
        seen.setdefault(r.headers["x-gateway-worker"], set()).add(r.status_code)
        if len(seen) >= workers and n > 20:
            break
        time.sleep(0.005)
    assert len(seen) == workers, seen
    return seen


class Gateway:
    """One `neuronetz-gateway serve` process (a replica), its log captured to a file."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 1,
        port: int | None = None,
        migrate: bool = True,
    ) -> None:
        self.env = env
        self.workers = workers
        self.port = port or free_port()
        self.migrate = migrate
        self.proc: subprocess.Popen[bytes] | None = None
        self._terminated = False
        self._log: IO[bytes] = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log")  # noqa: SIM115

    @property
    def url(self) -> str:
        """The base URL of this replica."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Start and wait until every worker answers /healthz."""
        self._terminated = False
        args = [
            EXE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if not self.migrate:
            args.append("--no-migrate")
        self.proc = subprocess.Popen(
            args,
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Sanic manager signalled twice SIGKILLs its group
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited {self.proc.returncode}:\n{self.log()}")
            if self._workers_ready():
                try:
                    if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"gateway did not start in {timeout}s:\n{self.log()}")

    def _workers_ready(self) -> bool:
        return self.log().count("worker started") >= self.workers

    def log(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def terminate(self) -> None:
        """Send SIGTERM once (a second one makes Sanic kill its workers at once)."""
        if self.proc is not None and not self._terminated:
            self._terminated = True
            self.proc.terminate()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(
                self.proc.pid, signal.SIGKILL
            )  # the gateway's own session: it and its workers
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


@contextmanager
def replicas(env: dict[str, str], count: int = 2, workers: int = 2) -> Iterator[list[Gateway]]:
    """`count` replicas of `serve --workers N` on one environment, started together (the first
    migrates) and stopped together."""
    started = [Gateway(env, workers=workers, migrate=n == 0) for n in range(count)]
    try:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(Gateway.start, started))
        yield started
    finally:
        for gw in started:
            gw.terminate()  # all of them drain at once
        for gw in started:
            gw.stop()
