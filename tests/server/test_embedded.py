"""The embedded default: SQLite file, no Redis, one worker — keys, limits and revocation work."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time
from pathlib import Path

import httpx

from config import Settings
from server.stores.database import ensure_sqlite_file, migrate
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, gateway_env


def test_embedded_gateway_serves_limits_and_revokes(tmp_path: Path) -> None:
    env = gateway_env(DATABASE_URL=f"sqlite://{tmp_path / 'gw.sqlite3'}", REDIS_URL=None)
    refused = cli(env, "serve", "--workers", "2", check=False)
    assert refused.returncode != 0 and "needs REDIS_URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    with FakeOllama() as fake:
        env["OLLAMA_URL"] = fake.url
        cli(env, "create-tenant", "--name", "acme", "--rpm", "3")
        key = create_key(env, "acme", "k1")
        auth = {"Authorization": f"Bearer {key}"}
        body = {"model": "llama3.2", "prompt": "hi", "stream": False}
        with Gateway(env, workers=1) as gw:
            codes = [
                httpx.post(
                    gw.url + "/api/generate", json=body, headers=auth, timeout=10
                ).status_code
                for _ in range(4)
            ]
            assert codes == [200, 200, 200, 429]
            assert httpx.get(gw.url + "/readyz", timeout=5).status_code == 200
            cli(env, "revoke-key", "--prefix", key[:11])
            deadline = time.monotonic() + 3  # the embedded server polls for changes every second
            while time.monotonic() < deadline:
                r = httpx.get(gw.url + "/v1/usage", headers=auth, timeout=5)
                if r.status_code == 401:
                    break
                time.sleep(0.1)
            assert r.status_code == 401


def test_the_sqlite_file_is_private(tmp_path: Path) -> None:

    path = tmp_path / "private.sqlite3"
    ensure_sqlite_file(f"sqlite://{path}")
    asyncio.run(migrate(Settings(database_url=f"sqlite://{path}")))
    conn = sqlite3.connect(path)  # WAL mode: the -wal and -shm files appear while it is open
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("private.sqlite3")]
    assert {p.name for p in files} >= {"private.sqlite3-wal", "private.sqlite3-shm"}
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    conn.close()
    assert set(modes.values()) == {"0o600"}, modes
