"""The compose files, the Dockerfile and the Caddyfile: what they expose, pin and keep apart."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "docker-compose.yml"
GPU = ROOT / "docker-compose.gpu.yml"
DEV = ROOT / "docker-compose.dev.yml"
CADDYFILE = ROOT / "config" / "examples" / "Caddyfile"
STREAM_TYPES = ("text/event-stream", "application/x-ndjson")
DEFAULT_DRAIN = 10.0  # the gateway's GRACEFUL_SHUTDOWN_TIMEOUT when unset
PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")  # where ci-tools.sh puts it


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _networks(service: dict[str, Any]) -> set[str]:
    nets = service.get("networks", ["default"])
    return set(nets if isinstance(nets, list) else nets.keys())


def _members(compose: dict[str, Any], network: str) -> set[str]:
    return {name for name, svc in compose["services"].items() if network in _networks(svc)}


def _seconds(duration: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def _published(service: dict[str, Any]) -> set[int]:
    out = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.add(int(port["published"]))
        else:
            out.add(int(str(port).split("/")[0].split(":")[-2]))
    return out


# A release's full version: x.y.z, or x.y where the project has no third part (PostgreSQL 10+).
VERSION_PARTS = {"postgres": 2}


def _assert_pinned(ref: str) -> None:
    name, _, tag = ref.rpartition(":")
    assert name and "/" not in tag, f"{ref}: no tag"
    parts = VERSION_PARTS.get(name, 3)
    pinned = re.compile(r"^\d+" + r"\.\d+" * (parts - 1) + r"(-[A-Za-z0-9.-]+)?$")
    assert tag != "latest" and pinned.match(tag), f"{ref}: not a release's full version"


# ---- production ----------------------------------------------------------------------------


def test_ollama_has_no_published_port_and_shares_networks_only_with_the_gateway() -> None:
    compose = _load(PROD)
    ollama = compose["services"]["ollama"]
    assert "ports" not in ollama and "network_mode" not in ollama
    shared = [n for n in _networks(ollama) if "gateway" in _members(compose, n)]
    assert shared, "the gateway cannot reach Ollama"
    for net in _networks(ollama):
        assert _members(compose, net) <= {"ollama", "gateway"}, f"{net}: {_members(compose, net)}"
    for net in shared:
        assert compose["networks"][net].get("internal") is True, f"{net} is not internal"


def test_ollama_has_an_egress_network_of_its_own_for_pulls() -> None:
    compose = _load(PROD)
    own = [
        n for n in _networks(compose["services"]["ollama"]) if _members(compose, n) == {"ollama"}
    ]
    assert own and not any((compose["networks"][n] or {}).get("internal") for n in own)


def test_postgres_and_redis_share_no_network_with_ollama() -> None:
    compose = _load(PROD)
    ollama = _networks(compose["services"]["ollama"])
    for name in ("postgres", "redis"):
        svc = compose["services"][name]
        assert not _networks(svc) & ollama, name
        assert "ports" not in svc, name
        assert all((compose["networks"][n] or {}).get("internal") for n in _networks(svc)), name


def test_only_caddy_publishes_ports_and_only_80_and_443() -> None:
    compose = _load(PROD)
    publishing = {name for name, svc in compose["services"].items() if svc.get("ports")}
    assert publishing == {"caddy"}
    assert _published(compose["services"]["caddy"]) == {80, 443}
    assert not any(svc.get("network_mode") == "host" for svc in compose["services"].values())


@pytest.mark.parametrize("path", [PROD, DEV], ids=["prod", "dev"])
def test_every_image_tag_is_pinned(path: Path) -> None:
    for name, svc in _load(path)["services"].items():
        if "image" in svc:
            _assert_pinned(svc["image"])
        else:
            assert "build" in svc, name


def test_the_dockerfile_base_images_are_pinned() -> None:
    froms = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert froms
    for ref in froms:
        _assert_pinned(ref)


def test_stop_grace_period_is_longer_than_the_gateway_drain() -> None:
    gateway = _load(PROD)["services"]["gateway"]
    drain = float(gateway.get("environment", {}).get("GRACEFUL_SHUTDOWN_TIMEOUT", DEFAULT_DRAIN))
    assert _seconds(gateway["stop_grace_period"]) >= drain + 5


def test_the_gateway_trusts_exactly_one_proxy_hop() -> None:
    assert _load(PROD)["services"]["gateway"]["environment"]["PROXIES_COUNT"] == "1"


def test_redis_is_append_only_and_never_evicts() -> None:
    command = " ".join(_load(PROD)["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_the_gpu_override_reserves_nvidia_gpus_for_ollama() -> None:
    services = _load(GPU)["services"]
    assert set(services) == {"ollama"}
    (device,) = services["ollama"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


# ---- development ---------------------------------------------------------------------------


def test_dev_keeps_postgres_and_redis_on_localhost_and_the_gateway_behind_a_profile() -> None:
    services = _load(DEV)["services"]
    for name in ("postgres", "redis"):
        assert "profiles" not in services[name], name  # `up -d` for the test suite, as before
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"]), name
    gateway = services["gateway"]
    assert gateway["profiles"] == ["gateway"] and "build" in gateway
    assert all(str(p).startswith("127.0.0.1:") for p in gateway["ports"])


# ---- the compose CLI's own check -----------------------------------------------------------


def _compose_cli() -> list[str] | None:
    candidates = [["docker", "compose"], [str(PLUGIN)], ["docker-compose"]]
    for cmd in candidates:
        if shutil.which(cmd[0]) is None:
            continue
        run = subprocess.run(
            [*cmd, "version", "--short"], capture_output=True, text=True, check=False
        )
        if run.returncode == 0 and re.match(r"v?([2-9]|\d\d)\.", run.stdout.strip()):
            return cmd
    return None


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "no Compose v2 CLI here (Debian 12's docker-compose 1.29 rejects the Compose "
            "Specification's `name:`); scripts/ci-tools.sh installs one"
        )
    return cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the files compose reads, with .env made from .env.example."""
    for name in (
        "docker-compose.yml",
        "docker-compose.dev.yml",
        "docker-compose.gpu.yml",
        "Dockerfile",
    ):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "config" / "examples").mkdir(parents=True)
    shutil.copy(CADDYFILE, tmp_path / "config" / "examples" / "Caddyfile")
    env = (ROOT / ".env.example").read_text()
    (tmp_path / ".env").write_text(
        env.replace("\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=pw123\n")
    )
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "docker-compose.yml"],
        ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml"],
        ["-f", "docker-compose.dev.yml"],
        ["-f", "docker-compose.dev.yml", "--profile", "gateway"],
    ],
    ids=["prod", "prod+gpu", "dev", "dev+gateway"],
)
def test_compose_config_passes(compose_cli: list[str], project: Path, args: list[str]) -> None:
    run = subprocess.run(
        [*compose_cli, *args, "config", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_compose_refuses_to_start_without_a_postgres_password(
    compose_cli: list[str], project: Path
) -> None:
    env = project / ".env"
    env.write_text(env.read_text().replace("\nPOSTGRES_PASSWORD=pw123\n", "\nPOSTGRES_PASSWORD=\n"))
    run = subprocess.run(
        [*compose_cli, "config", "-q"], cwd=project, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0 and "set POSTGRES_PASSWORD in .env" in run.stderr


def test_the_backends_line_the_wire_script_writes_reaches_the_gateway(
    compose_cli: list[str], project: Path
) -> None:
    line = '[{"name":"a","url":"http://a:11434","token":"t0k/+="}]'
    with (project / ".env").open("a") as env:
        env.write(f"OLLAMA_BACKENDS='{line}'\n")
    run = subprocess.run(
        [*compose_cli, "config", "--format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    environment = json.loads(run.stdout)["services"]["gateway"]["environment"]
    assert environment["OLLAMA_BACKENDS"] == line
    assert environment["PROXIES_COUNT"] == "1"


# ---- Caddy -----------------------------------------------------------------------------------


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _block(text: str, directive: str) -> str:
    """The body of the first `directive ... { ... }` block."""
    start = re.search(rf"^\s*{directive}\b[^\n{{]*{{", text, re.MULTILINE)
    assert start, f"no {directive} block"
    depth, i = 1, start.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start.end() : i - 1]


def _compresses(patterns: list[str], content_type: str) -> bool:
    return any(fnmatch.fnmatchcase(content_type, p) for p in patterns)


def test_caddyfile_flushes_at_once_and_never_compresses_streams() -> None:
    text = _without_comments(CADDYFILE.read_text())
    assert re.search(r"^\s*flush_interval\s+-1\s*$", _block(text, "reverse_proxy"), re.MULTILINE)
    if re.search(r"^\s*encode\b", text, re.MULTILINE):
        match = _block(_block(text, "encode"), "match")  # no match block: Caddy's list has text/*
        patterns = re.findall(r"^\s*header\s+Content-Type\s+(\S+)\s*$", match, re.MULTILINE)
        assert patterns and len(patterns) == len([ln for ln in match.splitlines() if ln.strip()])
        for content_type in STREAM_TYPES:
            for full in (content_type, f"{content_type}; charset=utf-8"):
                assert not _compresses(patterns, full), full


def test_caddy_reads_the_caddyfile_as_the_tests_do(tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (apt-get install -y caddy; scripts/ci-tools.sh does)")
    run = subprocess.run(
        [caddy, "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env={"GATEWAY_DOMAIN": "llm.example.com", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    handlers: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "handler" in node:
                handlers.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(run.stdout))
    (proxy,) = [h for h in handlers if h["handler"] == "reverse_proxy"]
    assert proxy["flush_interval"] == -1
    assert proxy["upstreams"] == [{"dial": "gateway:8080"}]
    for encode in (h for h in handlers if h["handler"] == "encode"):
        patterns = encode["match"]["headers"]["Content-Type"]
        assert not any(_compresses(patterns, t) for t in STREAM_TYPES)
        assert _compresses(patterns, "application/json")
