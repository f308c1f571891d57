"""A Redis Cluster of three masters started by the tests themselves (no Docker): start, find the
node of a key, kill a node and start it again on its port and its nodes.conf so it rejoins."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis.crc import key_slot

from tests.gateway import free_port

TOOLS = ("redis-server", "redis-cli")


@contextmanager
def running_cluster(workdir: Path) -> Iterator[LocalCluster]:
    """A started cluster, killed at the end; the test is skipped (only) when redis-server or
    redis-cli is not installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"a Redis Cluster needs {' and '.join(missing)} (apt-get install redis-server)")
    cluster = LocalCluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class LocalCluster:
    """Masters on loopback, no replicas, no persistence: a restarted node comes back empty."""

    def __init__(self, workdir: Path, masters: int = 3, node_timeout_ms: int = 5000) -> None:
        self.workdir = workdir
        self.ports = [free_port() for _ in range(masters)]
        self.bus_ports = [free_port() for _ in range(masters)]
        self.node_timeout_ms = node_timeout_ms
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """REDIS_URL naming every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def cli(self, port: int, *args: str, timeout: float = 5.0) -> str:
        """redis-cli against one node; its output ('' when the node does not answer)."""
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done.stdout.strip()

    def start_node(self, port: int) -> None:
        """Start one node (again): same port, same nodes.conf, empty data."""
        bus = self.bus_ports[self.ports.index(port)]
        log = (self.workdir / f"redis-{port}.log").open("ab")
        options = {
            "port": port,
            "cluster-enabled": "yes",
            "cluster-port": bus,
            "cluster-config-file": f"nodes-{port}.conf",
            "cluster-node-timeout": self.node_timeout_ms,
            "save": "",
            "appendonly": "no",
            "bind": "127.0.0.1",
            "dir": self.workdir,
        }
        self.procs[port] = subprocess.Popen(
            ["redis-server", *(arg for k, v in options.items() for arg in (f"--{k}", str(v)))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._until(lambda: self.cli(port, "PING") == "PONG", f"node {port} did not answer")

    def start(self) -> None:
        """Start every node, create the cluster and wait until every node says it is ok."""
        for port in self.ports:
            self.start_node(port)
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise AssertionError(f"redis-cli --cluster create failed:\n{created.stdout}")
        self.wait_ok()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node reports cluster_state:ok."""
        self._until(
            lambda: all("cluster_state:ok" in self.cli(p, "CLUSTER", "INFO") for p in self.ports),
            "the cluster did not reach cluster_state:ok",
            timeout,
        )

    def node_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot."""
        slot = key_slot(key.encode())
        for line in self.cli(self.ports[0], "CLUSTER", "NODES").splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return port
        raise AssertionError(f"no node serves slot {slot}")

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash: its data is gone, its nodes.conf stays)."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait()

    def stop(self) -> None:
        """Kill every node."""
        for port in list(self.procs):
            self.kill(port)

    @staticmethod
    def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(what)
