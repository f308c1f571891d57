"""Child processes of a bench run: started pinned, each in its own session, all stopped at exit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Self

import httpx


class BenchError(RuntimeError):
    """A part of the bench could not be started or measured; the message says which."""


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """One started process (and its process group), its output in a log file."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log

    @property
    def pid(self) -> int:
        """The process id of the command started (the group leader)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def tail(self, lines: int = 25) -> str:
        """The last lines it printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM once to the group, then SIGKILL the group after `grace` seconds."""
        if self.proc.poll() is not None:
            _kill_group(self.proc.pid, signal.SIGKILL)  # leftovers of an exited leader
            return
        _kill_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        _kill_group(self.proc.pid, signal.SIGKILL)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Starts children, pins them to CPUs, and stops every one of them on exit or signal."""

    def __init__(self, workdir: Path, *, pin: bool) -> None:
        self.workdir = workdir
        self.pin = pin and shutil.which("taskset") is not None
        self.children: list[Child] = []
        self.cleanups: list[Callable[[], None]] = []
        self.logs_on_failure: Path | None = None  # where to copy the logs if the run fails

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpus: str | None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start `argv` in a new session, pinned to `cpus` ("0", "1", "0-1") when pinning."""
        if self.pin and cpus:
            argv = ["taskset", "-c", cpus, *argv]
        slug = "".join(c if c.isalnum() else "-" for c in name)
        log_path = self.workdir / f"{len(self.children):02d}-{slug}.log"
        log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed below, child keeps its copy
        try:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def on_exit(self, cleanup: Callable[[], None]) -> None:
        """Run `cleanup` at the end (after the children are stopped), last registered first."""
        self.cleanups.append(cleanup)

    def stop_all(self) -> None:
        """Stop every child (newest first), then run the clean-ups; never raises."""
        while self.children:
            child = self.children.pop()
            try:
                child.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"bench: could not stop {child.name}: {exc}", file=sys.stderr)
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as exc:  # noqa: BLE001
                print(f"bench: clean-up failed: {exc}", file=sys.stderr)

    def __enter__(self) -> Self:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_interrupt)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and self.logs_on_failure is not None:
            shutil.rmtree(self.logs_on_failure, ignore_errors=True)
            self.logs_on_failure.mkdir(parents=True)
            for log in self.workdir.glob("*.log"):
                shutil.copy(log, self.logs_on_failure / log.name)
            print(f"bench: the processes' logs are in {self.logs_on_failure}", file=sys.stderr)
        self.stop_all()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def wait_http(
    child: Child, url: str, timeout: float, headers: dict[str, str] | None = None
) -> None:
    """Wait until GET `url` answers below 500, or fail with the child's last output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{child.name} exited {child.proc.returncode}:\n{child.tail()}")
        try:
            if httpx.get(url, timeout=1.0, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n{child.tail()}")


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion; fail with its stderr when it fails."""
    try:
        done = subprocess.run(
            list(argv),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} timed out") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:2])} exited {done.returncode}: {done.stderr[-2000:]}")
    return done
