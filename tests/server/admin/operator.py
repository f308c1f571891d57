"""Running the real CLI console script as an operator would, and reading the database directly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[3]
EXE = Path(sys.executable).parent / "neuronetz-gateway"
COMMAND = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "server.admin.cli"]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
KEY_LINE = re.compile(r"nz_[A-Za-z0-9]{48}")
LIMITS = ("rpm", "tpm", "max_concurrent", "daily_tokens", "monthly_tokens", "total_tokens")


def spawn(command: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start one CLI command written as on a shell line (no quoting needed in these tests)."""
    return subprocess.Popen(
        [*COMMAND, *command.split()],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Operator:
    """Runs CLI commands in one environment; keeps every byte they printed."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.printed: list[str] = []

    def run(self, *commands: str, code: int = 0) -> list[subprocess.CompletedProcess[str]]:
        """Run commands (written as on a shell line) concurrently; check each exit code."""
        procs = [spawn(command, self.env, self.cwd) for command in commands]
        done = []
        for command, proc in zip(commands, procs):
            out, err = proc.communicate(timeout=60)
            self.printed += [out, err]
            assert proc.returncode == code, f"{command}: exit {proc.returncode}\n{out}\n{err}"
            assert "Traceback" not in err, err
            done.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
        return done

    def out(self, command: str) -> str:
        """Run one command that must succeed; its stdout."""
        return self.run(command)[0].stdout

    def json(self, command: str) -> Any:
        """Run one --json command; its parsed output."""
        return json.loads(self.out(command))

    def fails(self, *commands: str) -> list[str]:
        """Run commands that must each fail with exit 1 and one `error:` line; the lines."""
        lines = []
        for proc in self.run(*commands, code=1):
            assert proc.stdout == "", proc
            assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc
            lines.append(proc.stderr.strip())
        return lines


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL directly against the test's database (SQLite file or PostgreSQL)."""
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            return conn.execute(sql).fetchall()

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def base_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update({"PYTHONPATH": str(ROOT), "BUDGET_TIMEZONE": "UTC"})
    env.update(values)
    return env
