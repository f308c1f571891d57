"""Before the suite: check PostgreSQL and Redis answer, and say what to install if not."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from urllib.parse import urlsplit

SERVICES = {
    "PostgreSQL": (
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        5432,
        (
            "apt-get install -y postgresql && pg_ctlcluster $(ls /etc/postgresql) main start "
            "(trust auth for user postgres on 127.0.0.1), or set DATABASE_URL"
        ),
    ),
    "Redis": (
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        6379,
        "apt-get install -y redis-server && redis-server --daemonize yes, or set REDIS_URL",
    ),
}


def main() -> int:
    """Exit non-zero with a clear message when a service is missing."""
    missing = []
    for name, (url, default_port, hint) in SERVICES.items():
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or default_port
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError:
            missing.append(f"{name} is not reachable at {host}:{port}. Install/start it: {hint}")
    for line in missing:
        print(f"error: {line}", file=sys.stderr)
    tools = [t for t in ("redis-server", "redis-cli") if shutil.which(t) is None]
    if tools:
        print(
            f"warning: {' and '.join(tools)} not found: the Redis Cluster tests will be skipped "
            "(apt-get install -y redis-server)",
            file=sys.stderr,
        )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
