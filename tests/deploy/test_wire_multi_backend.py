"""scripts/wire-multi-backend.sh against a stand-in docker that answers from fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.wire import ENV_BEFORE, EXPECTED, SCRIPT, TOKEN_CPU3, TOKEN_GPU2, Host

TOKENS = (TOKEN_GPU2, TOKEN_CPU3)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def _snapshot(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns


def _assert_no_token(*texts: str) -> None:
    for text in texts:
        for token in TOKENS:
            assert token not in text


def _refused(host: Host, message: str) -> subprocess.CompletedProcess[str]:
    """Run the script on the saved state: it fails with `message`, .env exactly as it was."""
    host.save()
    before = _snapshot(host.env_file)
    result = host.run()
    assert result.returncode == 1
    assert message in result.stderr
    assert _snapshot(host.env_file) == before
    return result


def test_embedded_first_then_extras_in_discovery_order_with_tokens(host: Host) -> None:
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert host.backends() == EXPECTED
    calls = host.calls()
    assert ["network", "connect", "neuronetz_proxy", "beef00000002"] in calls
    assert sum(c[:2] == ["network", "connect"] for c in calls) == 1  # cpu3 already shares one
    up = calls.index(["compose", "up", "-d", "gateway"])
    health = next(
        i for i, c in enumerate(calls) if c[:5] == ["compose", "exec", "-T", "gateway", "python"]
    )
    probe = calls.index(["compose", "exec", "-T", "gateway", "neuronetz-gateway", "probe-ollama"])
    listing = calls.index(
        ["compose", "exec", "-T", "gateway", "neuronetz-gateway", "list-backends"]
    )
    assert up < health < probe < listing
    assert "neuronetz-ollama-1" in result.stdout and "ollama-cpu3" in result.stdout


def test_other_lines_of_env_are_kept(host: Host) -> None:
    assert host.run().returncode == 0
    before = ENV_BEFORE.splitlines()
    after = host.env_file.read_text().splitlines()
    old = next(i for i, ln in enumerate(before) if ln.startswith("OLLAMA_BACKENDS="))
    assert after[:old] == before[:old] and after[old + 1 :] == before[old + 1 :]


def test_env_without_the_variable_gets_it_appended(host: Host) -> None:
    host.env_file.write_text(
        "POSTGRES_PASSWORD=pw\nGATEWAY_DOMAIN=x.example.com"
    )  # no final newline
    assert host.run().returncode == 0
    lines = host.env_file.read_text().splitlines()
    assert lines[:2] == ["POSTGRES_PASSWORD=pw", "GATEWAY_DOMAIN=x.example.com"]
    assert host.backends() == EXPECTED


def test_a_multi_line_value_is_replaced_whole(host: Host) -> None:
    host.env_file.write_text(
        'A=1\nOLLAMA_BACKENDS="[\n  {\\"name\\": \\"x\\", \\"url\\": \\"http://x:1\\"}\n]"\nB=2\n'
    )
    assert host.run().returncode == 0
    text = host.env_file.read_text()
    assert text.startswith("A=1\nOLLAMA_BACKENDS='") and text.endswith("'\nB=2\n")
    assert host.backends() == EXPECTED


def test_an_extra_with_auth_on_and_no_token_fails_with_the_fix(host: Host) -> None:
    extra = host.state["containers"]["cafe00000003"]
    extra["env"] = ["OLLAMA_AUTH=1", "OLLAMA_AUTH_TOKEN="]
    result = _refused(host, "'ollama-cpu3' has OLLAMA_AUTH=1 but OLLAMA_AUTH_TOKEN is empty")
    assert "docker rm -f ollama-cpu3" in result.stderr
    assert '-e OLLAMA_AUTH_TOKEN="$(openssl rand -hex 32)" ollama/ollama:latest' in result.stderr
    assert ".env not changed" in result.stderr
    calls = host.calls()
    assert not any(c[:2] == ["network", "connect"] for c in calls)
    assert not any(c[:2] == ["compose", "up"] for c in calls)
    _assert_no_token(result.stdout, result.stderr)


def test_a_token_that_cannot_go_into_env_is_refused(host: Host) -> None:
    host.state["containers"]["beef00000002"]["env"] = ["OLLAMA_AUTH=1", "OLLAMA_AUTH_TOKEN=it's"]
    _refused(host, "OLLAMA_AUTH_TOKEN of 'ollama-gpu2' holds characters")


def test_a_second_run_gives_the_same_line(host: Host) -> None:
    assert host.run().returncode == 0
    first = host.backends_lines()
    after_first = len(host.calls())
    second = host.run()
    assert second.returncode == 0, second.stderr
    assert host.backends_lines() == first
    assert "already has this OLLAMA_BACKENDS" in second.stdout
    assert not any(c[:2] == ["network", "connect"] for c in host.calls()[after_first:])


def test_no_token_appears_in_what_it_prints(host: Host) -> None:
    result = host.run()
    assert result.returncode == 0
    # The stand-in gateway CLI prints the tokens it was given; the script hides them.
    assert "token=***" in result.stdout
    assert '"token":"***"' in result.stdout
    _assert_no_token(result.stdout, result.stderr)
    dry = host.run("--dry-run")
    assert dry.returncode == 0
    _assert_no_token(dry.stdout, dry.stderr)


@pytest.mark.parametrize(
    ("match", "message"),
    [
        (["inspect", "cafe00000003"], "docker inspect"),  # the last container, after the others
        (["network", "connect"], "could not attach ollama-gpu2 to neuronetz_proxy"),
    ],
    ids=["inspect-of-the-last-container", "network-connect"],
)
def test_a_failure_half_way_leaves_env_as_it_was(
    host: Host, match: list[str], message: str
) -> None:
    host.state["fail"] = [{"match": match, "stderr": "Error response from daemon: boom"}]
    result = _refused(host, message)
    assert "boom" in result.stderr and ".env not changed" in result.stderr
    assert not any(c[:2] == ["compose", "up"] for c in host.calls())
    assert not list(host.project.glob(".env.wire*"))


@pytest.mark.parametrize("failure", ["compose-up", "healthz"])
def test_a_gateway_that_fails_on_the_new_env_gets_the_old_one_back(
    host: Host, failure: str
) -> None:
    if failure == "compose-up":
        host.state["fail"] = [{"match": ["up", "-d"], "stderr": "Error: cannot start"}]
    else:
        host.state["healthz"] = False
    host.save()
    before = host.env_file.read_bytes()
    result = host.run(WIRE_HEALTH_TIMEOUT="1")
    assert result.returncode == 1
    assert ".env restored to its previous content" in result.stderr
    assert host.env_file.read_bytes() == before
    assert not list(host.project.glob(".env.wire*"))
    _assert_no_token(result.stdout, result.stderr)


def test_a_backend_down_after_wiring_is_reported(host: Host) -> None:
    host.state["probe_rc"] = 1
    host.save()
    result = host.run()
    assert result.returncode == 1
    assert "a backend is not answering" in result.stderr
    assert host.backends() == EXPECTED  # the gateway runs on it: kept


def test_dry_run_changes_nothing(host: Host) -> None:
    before = _snapshot(host.env_file)
    result = host.run("--dry-run")
    assert result.returncode == 0
    assert "would attach ollama-gpu2 to neuronetz_proxy" in result.stdout
    assert _snapshot(host.env_file) == before
    assert not any(c[:2] in (["network", "connect"], ["compose", "up"]) for c in host.calls())


def test_without_docker_on_path(host: Host, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = host.run(path=str(empty))
    assert result.returncode == 1
    assert "docker is not on PATH" in result.stderr


def test_without_env(host: Host) -> None:
    host.env_file.unlink()
    result = host.run()
    assert result.returncode == 1
    assert "cp .env.example .env" in result.stderr
    assert not host.env_file.exists()


def test_without_a_running_gateway(host: Host) -> None:
    host.state["containers"]["9a7e00000001"]["running"] = False
    _refused(host, "the gateway container is not running")


def test_without_any_ollama_container(host: Host) -> None:
    for c in host.state["containers"].values():
        if c["image"].startswith("ollama/"):
            c["running"] = False
    host.save()
    result = host.run()
    assert result.returncode == 1
    assert "no running Ollama container" in result.stderr


def test_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is missing in CI: scripts/ci-tools.sh installs it")
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
