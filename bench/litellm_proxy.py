"""LiteLLM's proxy in its own virtualenv, no database, one worker, pointed at the same fake."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from bench.procs import BenchError, Supervisor, free_port, wait_http
from bench.scenarios import Target

VENV = Path(__file__).resolve().parent / ".venv-litellm"
SPEC = "litellm[proxy]==1.108.7"  # the release the speed issue measured; --litellm-spec to change
DROP = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "LITELLM_MASTER_KEY",
    "OPENAI_API_KEY",
    "PYTHONPATH",
)


def ensure_venv(spec: str) -> Path:
    """bench/.venv-litellm with `spec` installed (created on first use; it takes a few minutes)."""
    exe = VENV / "bin" / "litellm"
    marker = VENV / "bench-spec.txt"
    if exe.exists() and marker.exists() and marker.read_text() == spec:
        return exe
    print(f"bench: installing {spec} into {VENV} (first use only, a few minutes)", flush=True)
    try:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", spec], check=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"could not install {spec}: {exc}") from exc
    marker.write_text(spec)
    return exe


def version() -> str:
    """The installed LiteLLM's version."""
    done = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or "?"


def _config(fake: Target, master_key: str) -> str:
    base = {"api_base": fake.url + "/v1", "api_key": "unused"}
    models = [
        {"model_name": "llama3.2", "litellm_params": {"model": "openai/llama3.2", **base}},
        {"model_name": "all-minilm", "litellm_params": {"model": "openai/all-minilm", **base}},
    ]
    config = {
        "model_list": models,
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"drop_params": True, "telemetry": False},
    }
    return json.dumps(config, indent=1)  # JSON is YAML


def start_litellm(sup: Supervisor, fake: Target, cpus: str | None, spec: str) -> Target:
    """`litellm --config ... --num_workers 1` on a free port; /v1 paths only."""
    exe = ensure_venv(spec)
    master_key = "sk-bench-" + secrets.token_urlsafe(16)
    cfg = sup.workdir / "litellm.yaml"
    cfg.write_text(_config(fake, master_key))
    cfg.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in DROP}
    env |= {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    port = free_port()
    child = sup.start(
        "litellm",
        [
            str(exe),
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        cpus=cpus,
        env=env,
        cwd=sup.workdir,
    )
    target = Target(
        "LiteLLM proxy",
        f"http://127.0.0.1:{port}",
        child,
        headers={"Authorization": f"Bearer {master_key}"},
        paths=frozenset({"/v1/chat/completions", "/v1/embeddings"}),
    )
    wait_http(child, target.url + "/health/liveliness", 240)
    return target
