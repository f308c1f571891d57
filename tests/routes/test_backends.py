"""Two backends: routing by model, union listings, fail-over, cool-down and probe back in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import ollama
import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.gateway import Gateway, cli, create_key
from tests.routes.conftest import make_env, relayed

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@dataclass
class Pair:
    """Two fakes behind one gateway: `first` (priority) and `second` (has an extra model)."""

    first: FakeOllama
    second: FakeOllama
    gateway: Gateway
    env: dict[str, str]
    key: str

    def client(self) -> ollama.Client:
        """The ollama client through the gateway."""
        return ollama.Client(host=self.gateway.url, headers={"Authorization": f"Bearer {self.key}"})


@pytest.fixture(scope="module")
def pair(package_db: str) -> Iterator[Pair]:
    with (
        FakeOllama(models="llama3.2,all-minilm") as first,
        FakeOllama(models="llama3.2,mistral:7b") as second,
    ):
        backends = [
            {"name": "first", "url": first.url, "token": "token-first"},
            {"name": "second", "url": second.url, "token": "token-second"},
        ]
        env = make_env(package_db, backends, probe_interval="0.5")
        env["UPSTREAM_READ_TIMEOUT"] = "1.5"
        cli(env, "create-tenant", "--name", "two-backends")
        key = create_key(env, "two-backends", "k")
        with Gateway(env, workers=2) as gateway:
            yield Pair(first, second, gateway, env, key)


@pytest.fixture
def fresh(pair: Pair) -> Pair:
    for fake in (pair.first, pair.second):
        if fake.process is None:
            fake.restart()
        fake.reset()
    return pair


def test_models_only_on_the_second_are_routed_there(fresh: Pair) -> None:
    client = fresh.client()
    client.chat(model="mistral:7b", messages=MESSAGES)
    client.chat(model="llama3.2", messages=MESSAGES)
    assert [r["body"]["model"] for r in relayed(fresh.second, "/api/chat")] == ["mistral:7b"]
    assert [r["body"]["model"] for r in relayed(fresh.first, "/api/chat")] == ["llama3.2"]


def test_each_backend_gets_its_own_token(fresh: Pair) -> None:
    client = fresh.client()
    client.chat(model="mistral:7b", messages=MESSAGES)
    client.chat(model="llama3.2", messages=MESSAGES)
    for fake, token in ((fresh.first, "token-first"), (fresh.second, "token-second")):
        seen = {r["headers"].get("authorization") for r in fake.requests()}
        assert seen == {f"Bearer {token}"}


def test_listings_are_the_union(fresh: Pair) -> None:
    names = sorted(m.model or "" for m in fresh.client().list().models)
    assert names == ["all-minilm:latest", "llama3.2:latest", "mistral:7b"]
    models = httpx.get(
        fresh.gateway.url + "/v1/models", headers={"Authorization": f"Bearer {fresh.key}"}
    ).json()
    assert sorted(m["id"] for m in models["data"]) == names


def wait_ready(pair: Pair, status: int) -> dict[str, Any]:
    """Poll /readyz (each worker probes on its own) until every answer has this status."""
    deadline = time.monotonic() + 5
    streak = 0
    while streak < 4:
        ready = httpx.get(pair.gateway.url + "/readyz")
        streak = streak + 1 if ready.status_code == status else 0
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.1)
    body: dict[str, Any] = ready.json()
    return body


def test_fail_over_cool_down_and_probe_back(fresh: Pair) -> None:
    client = fresh.client()
    fresh.first.stop()
    for _ in range(4):  # both workers, before and after the first is marked down
        answer = client.chat(model="llama3.2", messages=MESSAGES)
        assert answer.done
    assert len(relayed(fresh.second, "/api/chat")) == 4
    fresh.second.stop()
    statuses = set()
    for _ in range(4):
        with pytest.raises(ollama.ResponseError) as err:
            client.chat(model="llama3.2", messages=MESSAGES)
        statuses.add(err.value.status_code)
    assert statuses <= {502, 503} and statuses
    assert wait_ready(fresh, 503)["checks"]["backends"].startswith("failed")
    fresh.first.restart()
    fresh.second.restart()
    wait_ready(fresh, 200)
    time.sleep(1.2)  # every worker's probe has run
    for _ in range(4):
        client.chat(model="llama3.2", messages=MESSAGES)
    assert len(relayed(fresh.first, "/api/chat")) == 4


def test_a_backend_that_does_not_answer_in_time_is_504(fresh: Pair) -> None:
    for fake in (fresh.first, fresh.second):  # whichever the probes consider healthy
        fake.configure(first_byte_ms=3000)
    with pytest.raises(ollama.ResponseError) as err:
        fresh.client().chat(model="llama3.2", messages=MESSAGES)
    assert err.value.status_code == 504
    tried = [f for f in (fresh.first, fresh.second) if relayed(f, "/api/chat")]
    assert len(tried) == 1 and len(relayed(tried[0], "/api/chat")) == 1  # no retry
    assert tried[0].wait_cancellations(1, timeout=1.0)


@pytest.mark.parametrize("command", ["list-backends", "probe-ollama"])
def test_cli_shows_backends_without_tokens(fresh: Pair, command: str) -> None:
    rows = json.loads(cli(fresh.env, command, "--json").stdout)
    assert [(r["name"], r["healthy"], r["models"], r["has_token"]) for r in rows] == [
        ("first", True, ["all-minilm:latest", "llama3.2:latest"], True),
        ("second", True, ["llama3.2:latest", "mistral:7b"], True),
    ]
    assert rows[0]["version"] == "0.33.0"
    routing = [(r["group"], r["weight"], r["max_concurrent"], r["in_flight"]) for r in rows]
    assert routing == [(0, 1.0, None, 0), (1, 1.0, None, 0)]  # no groups: list order, idle
    text = cli(fresh.env, command).stdout
    assert "first" in text and "token-first" not in text and "set" in text
    assert text.splitlines()[0].split()[-5:] == ["GROUP", "WEIGHT", "MAX", "IN", "FLIGHT"]
    fresh.second.stop()
    down = cli(fresh.env, command, check=False)
    assert down.returncode == (1 if command == "probe-ollama" else 0)
    assert "down" in down.stdout


def test_pull_model_shows_progress_and_the_model_is_then_listed(fresh: Pair) -> None:
    fresh.second.configure(registry=["phi3:mini"])
    pulled = cli(fresh.env, "pull-model", "--backend", "second", "phi3:mini")
    assert "pulled phi3:mini onto second" in pulled.stdout
    progress = pulled.stderr
    assert "pulling manifest" in progress and "success" in progress and "%" in progress
    assert "token-second" not in progress + pulled.stdout
    (request,) = [r for r in fresh.second.requests("/api/pull")]
    assert request["headers"]["authorization"] == "Bearer token-second"  # the backend's own
    rows = json.loads(cli(fresh.env, "probe-ollama", "--json").stdout)
    assert "phi3:mini" in next(r for r in rows if r["name"] == "second")["models"]
    unknown = cli(fresh.env, "pull-model", "--backend", "second", "nope:1b", check=False)
    assert unknown.returncode == 1 and "file does not exist" in unknown.stderr
    assert cli(fresh.env, "pull-model", "--backend", "third", "x", check=False).returncode == 1
