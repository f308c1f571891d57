"""Start/stop a fake Ollama subprocess from synchronous test code or benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlencode

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_FLAGS = {
    "host": "--host",
    "models": "--models",
    "version": "--version",
    "pace_ms": "--pace-ms",
    "first_byte_ms": "--first-byte-ms",
    "tokens": "--tokens",
    "parallel": "--parallel",
    "max_queue": "--max-queue",
    "fast": "--fast",
    "registry": "--registry",
}


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for an unused TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class FakeOllama:
    """A fake Ollama server running as a child process.

    `with FakeOllama().start() as fake: ...` or `fake = FakeOllama(); fake.start(port=11500,
    pace_ms=20)`. CLI options: host, models and registry (list or comma string), version,
    pace_ms, first_byte_ms, tokens, parallel, max_queue, fast (bool). Everything can also be
    changed at run time with configure(); reset() goes back to the CLI options.
    """

    def __init__(self, **cli_options: Any) -> None:
        self.options: dict[str, Any] = dict(cli_options)
        self.host: str = str(self.options.get("host", "127.0.0.1"))
        self.port: int = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._client = httpx.Client(timeout=10.0)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:11500 (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def _argv(self) -> list[str]:
        argv = [sys.executable, "-m", "tests.fake_ollama", "--port", str(self.port)]
        for key, value in self.options.items():
            if key not in CLI_FLAGS:
                raise TypeError(f"unknown fake-ollama option {key!r}")
            if key in ("models", "registry") and not isinstance(value, str):
                value = ",".join(value)
            if key == "fast":
                argv += [CLI_FLAGS[key]] if value else []
                continue
            argv += [CLI_FLAGS[key], str(value)]
        return argv

    def start(self, port: int | None = None, **cli_options: Any) -> FakeOllama:
        """Spawn the server (free port if none given) and wait until GET / answers."""
        if self.process is not None:
            raise RuntimeError("fake ollama already running")
        self.options.update(cli_options)
        self.host = str(self.options.get("host", "127.0.0.1"))
        self.port = port or self.port or free_port(self.host)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            self._argv(), cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(15.0)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"fake ollama exited early:\n{self.log()}")
            try:
                if self._client.get(self.url + "/", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"fake ollama did not start within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """Everything the child process printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate the process (SIGKILL after 5 s)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def restart(self) -> FakeOllama:
        """Stop and start again on the same port with the same options."""
        self.stop()
        return self.start(port=self.port)

    def close(self) -> None:
        """Stop the server and release the HTTP client and log file."""
        self.stop()
        self._client.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._client.request(method, f"{self.url}/_fake/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests (optionally only those for one path)."""
        records: list[dict[str, Any]] = self._control("GET", "requests")
        return [r for r in records if path is None or r["path"] == path]

    def cancellations(self) -> list[dict[str, Any]]:
        """Recorded client disconnects during generation."""
        records: list[dict[str, Any]] = self._control("GET", "cancellations")
        return records

    def wait_cancellations(self, count: int = 1, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Poll until at least `count` cancellations are recorded (or timeout)."""
        deadline = time.monotonic() + timeout
        records = self.cancellations()
        while len(records) < count and time.monotonic() < deadline:
            time.sleep(0.02)
            records = self.cancellations()
        return records

    def decoded(self, path: str | None = None) -> list[dict[str, Any]]:
        """The decoded views of recorded requests (see records.py), oldest first."""
        return [r["decoded"] for r in self.requests(path) if "decoded" in r]

    def token_totals(self, path: str | None = None) -> dict[str, int]:
        """Sums over the decoded views: requests, prompt_eval_count, eval_count, generated."""
        suffix = "" if path is None else "?" + urlencode({"path": path})
        totals: dict[str, int] = self._control("GET", "tokens" + suffix)
        return totals

    def generated_tokens(self, path: str | None = None) -> int:
        """Tokens the backend generated (finished or cancelled), summed over requests."""
        return self.token_totals(path)["generated"]

    def load(self) -> dict[str, int]:
        """Load counters: in_flight, peak, total, inference_*, running, queued, rejected…"""
        counters: dict[str, int] = self._control("GET", "load")
        return counters

    def wait_idle(self, timeout: float = 5.0) -> dict[str, int]:
        """Poll until no request is in flight (or timeout); returns the load counters."""
        deadline = time.monotonic() + timeout
        counters = self.load()
        while counters["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
            counters = self.load()
        return counters

    def reset(self) -> None:
        """Clear records and runtime config overrides."""
        self._control("POST", "reset")

    def configure(self, **config: Any) -> dict[str, Any]:
        """Merge keys into the runtime config; returns the full config."""
        result: dict[str, Any] = self._control("POST", "config", config)
        return result

    def config(self) -> dict[str, Any]:
        """The current runtime config."""
        result: dict[str, Any] = self._control("GET", "config")
        return result

    def __enter__(self) -> Self:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
