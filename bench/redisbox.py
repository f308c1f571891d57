"""The run's Redis: a private redis-server on its own port, or a shared one under a private namespace."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from bench.procs import BenchError, Child, Supervisor, free_port


@dataclass(frozen=True)
class CommandStats:
    """`INFO commandstats` at one moment: calls and usec per command."""

    calls: dict[str, int]
    usec: dict[str, int]

    def minus(self, earlier: CommandStats) -> CommandStats:
        """What happened between `earlier` and this snapshot."""
        return CommandStats(
            {k: v - earlier.calls.get(k, 0) for k, v in self.calls.items()},
            {k: v - earlier.usec.get(k, 0) for k, v in self.usec.items()},
        )

    def top_level_usec(self, inner: frozenset[str]) -> int:
        """Microseconds of the commands clients sent: a script's usec already includes the
        commands it calls, which commandstats counts again under their own names (`inner`)."""
        return sum(v for k, v in self.usec.items() if k not in inner)

    def top_level_calls(self, inner: frozenset[str]) -> int:
        """How many commands clients sent (scripts counted once)."""
        return sum(v for k, v in self.calls.items() if k not in inner)

    def top(self, n: int = 4) -> list[tuple[str, int, int]]:
        """The `n` commands with the most usec: (name, calls, usec)."""
        names = sorted(self.usec, key=lambda k: self.usec[k], reverse=True)[:n]
        return [(k, self.calls.get(k, 0), self.usec[k]) for k in names if self.usec[k] > 0]


def script_commands(root: Path) -> frozenset[str]:
    """The commands the project's Lua scripts call (lower case, as commandstats names them)."""
    names: set[str] = set()
    for path in [*root.glob("limits/**/*.lua"), *root.glob("server/**/*.lua")]:
        names |= {m.lower() for m in re.findall(r"redis\.p?call\(\s*['\"](\w+)", path.read_text())}
    return frozenset(names)


class RedisBox:
    """Where the gateway's Redis is, how to read its command stats, and its clean-up."""

    def __init__(self, url: str, child: Child | None, namespace: str) -> None:
        self.url = url
        self.child = child
        self.namespace = namespace
        self.client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)

    @property
    def private(self) -> bool:
        """Whether this run started the redis-server itself (so nothing else uses it)."""
        return self.child is not None

    def stats(self) -> CommandStats:
        """Take a commandstats snapshot (`cmdstat_info` excluded: that is the bench reading)."""
        raw = self.client.info("commandstats")
        calls, usec = {}, {}
        for name, v in raw.items():
            cmd = name.removeprefix("cmdstat_")
            if cmd != "info":
                calls[cmd], usec[cmd] = int(v["calls"]), int(v["usec"])
        return CommandStats(calls, usec)

    def version(self) -> str:
        """The server's redis_version."""
        return str(self.client.info("server").get("redis_version", "?"))

    def used_memory_mb(self) -> float:
        """The server's used_memory, in MiB."""
        return int(self.client.info("memory")["used_memory"]) / 2**20

    def namespace_keys(self) -> int:
        """How many keys the run's namespace holds."""
        return sum(1 for _ in self.client.scan_iter(match=f"{self.namespace}:*", count=1000))

    def cleanup(self) -> None:
        """Delete the run's keys from a shared server (a private one just stops)."""
        if not self.private:
            try:
                batch = list(self.client.scan_iter(match=f"{self.namespace}:*", count=1000))
                for i in range(0, len(batch), 500):
                    self.client.unlink(*batch[i : i + 500])
            except RedisError as exc:
                print(f"bench: could not delete the run's Redis keys: {exc}")
        self.client.close()


def open_redis(
    sup: Supervisor, *, url: str | None, port: int | None, cpus: str | None, namespace: str
) -> RedisBox:
    """Start a private redis-server (url None), or use the server at `url`."""
    if url is None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise BenchError(
                "redis-server is not installed: apt-get install -y redis-server, "
                "or pass --redis-url to use a running Redis"
            )
        port = port or free_port()
        datadir = sup.workdir / "redis"
        datadir.mkdir()
        child = sup.start(
            "redis",
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(datadir),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            cpus=cpus,
        )
        box = RedisBox(f"redis://127.0.0.1:{port}/0", child, namespace)
        _wait_ping(box, child)
    else:
        box = RedisBox(url, None, namespace)
        _wait_ping(box, None)
    sup.on_exit(box.cleanup)
    return box


def _wait_ping(box: RedisBox, child: Child | None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise BenchError(f"redis-server exited:\n{child.tail()}")
        try:
            if box.client.ping():
                return
        except RedisError:
            time.sleep(0.1)
    raise BenchError(f"Redis at {box.url} did not answer PING within {timeout:.0f} s")
