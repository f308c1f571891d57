"""One fake Ollama and one real `neuronetz-gateway serve --workers 2` shared by the route tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from server.relay.backends import PROBE_AGENT
from tests import dbs
from tests.conftest import REDIS_URL
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key, gateway_env

BACKEND_TOKEN = "backend-secret-a"


@dataclass
class Stack:
    """The shared fake, gateway and keys."""

    fake: FakeOllama
    gateway: Gateway
    env: dict[str, str]
    key: str  # all models, no limits
    limited_key: str  # llama3.2 and all-minilm only
    rpm_key: str  # --rpm 1
    rated_key: str  # --rpm 1000: rate headers on every answer

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self.gateway.url

    def auth(self, key: str | None = None) -> dict[str, str]:
        """Authorization header for a key (the unrestricted one by default)."""
        return {"Authorization": f"Bearer {key or self.key}"}


def make_env(
    database_url: str, backends: list[dict[str, str]], probe_interval: str = "10"
) -> dict[str, str]:
    """Gateway environment on its own database and Redis namespace."""
    return gateway_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_NAMESPACE=f"nzgw-t-{uuid.uuid4().hex[:12]}",
        OLLAMA_BACKENDS=json.dumps(backends),
        BACKEND_PROBE_INTERVAL=probe_interval,
    )


@pytest.fixture(scope="package")
def routes_db(pg_template: str) -> Iterator[str]:
    """This package's own database (a package may be entered more than once under xdist)."""
    url = dbs.create_database(pg_template)
    yield url
    dbs.drop_database(url)


@pytest.fixture(scope="package")
def stack(routes_db: str) -> Iterator[Stack]:
    """The fake with a backend token, the gateway in front of it, and three keys."""
    with FakeOllama() as fake:
        env = make_env(routes_db, [{"name": "main", "url": fake.url, "token": BACKEND_TOKEN}])
        cli(env, "create-tenant", "--name", "acme")
        cli(env, "create-tenant", "--name", "slow", "--rpm", "1")
        key = create_key(env, "acme", "all")
        limited = create_key(env, "acme", "limited", "--models", "llama3.2,all-minilm")
        rpm = create_key(env, "slow", "one-a-minute")
        rated = create_key(env, "acme", "rated", "--rpm", "1000")
        with Gateway(env, workers=2) as gateway:
            yield Stack(fake, gateway, env, key, limited, rpm, rated)


def relayed(fake: FakeOllama, path: str | None = None) -> list[dict[str, Any]]:
    """What the fake received, minus the gateway's own health probes."""
    return [r for r in fake.requests(path) if r["headers"].get("user-agent") != PROBE_AGENT]


@pytest.fixture
def fake(stack: Stack) -> FakeOllama:
    """The shared fake, reset for this test."""
    stack.fake.reset()
    return stack.fake
