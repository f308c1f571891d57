"""Run scripts/wire-multi-backend.sh against the stand-in docker, from a fixture host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "wire-multi-backend.sh"
FAKE = Path(__file__).with_name("fake_docker.py")
BASH = shutil.which("bash") or "/bin/bash"

TOKEN_GPU2 = "tok_gpu2_4f9c1e7a2b5d"
TOKEN_CPU3 = "tok-cpu3.8d2e6b1c0a+Q=="

ENV_BEFORE = """# my production settings
GATEWAY_DOMAIN=llm.example.com
POSTGRES_PASSWORD=s3cretpw
OLLAMA_BACKENDS='[{"name":"old","url":"http://old:11434"}]'
export LOG_LEVEL=debug
#OLLAMA_BACKENDS=commented-out-stays
"""


def host_state() -> dict[str, Any]:
    """A host with the compose stack, two extra Ollama containers and an unrelated one."""
    return {
        "containers": {
            "9a7e00000001": {
                "name": "/neuronetz-gateway-1",
                "image": "neuronetz-gateway",
                "running": True,
                "networks": ["neuronetz_proxy", "neuronetz_data", "neuronetz_ollama_internal"],
                "env": ["GATEWAY_PORT=8080"],
            },
            "c0ffee000001": {
                "name": "/neuronetz-ollama-1",
                "image": "ollama/ollama:0.32.15",
                "running": True,
                "networks": ["neuronetz_ollama_internal", "neuronetz_ollama_egress"],
                "env": ["PATH=/usr/bin", "OLLAMA_HOST=0.0.0.0:11434", "OLLAMA_NO_CLOUD=1"],
            },
            "beef00000002": {  # on the default bridge only: must be attached
                "name": "/ollama-gpu2",
                "image": "ollama/ollama:0.32.15",
                "running": True,
                "networks": ["bridge"],
                "env": [
                    "OLLAMA_HOST=0.0.0.0:11434",
                    "OLLAMA_AUTH=1",
                    f"OLLAMA_AUTH_TOKEN={TOKEN_GPU2}",
                ],
            },
            "cafe00000003": {  # already on the proxy network, another port, image :latest
                "name": "/ollama-cpu3",
                "image": "ollama/ollama:latest",
                "running": True,
                "networks": ["neuronetz_proxy"],
                "env": [
                    "OLLAMA_HOST=http://0.0.0.0:11500",
                    "OLLAMA_AUTH=true",
                    f"OLLAMA_AUTH_TOKEN={TOKEN_CPU3}",
                ],
            },
            "dead00000004": {  # stopped: not a backend
                "name": "/ollama-old",
                "image": "ollama/ollama:0.32.15",
                "running": False,
                "networks": ["bridge"],
                "env": [],
            },
            "ab0000000005": {
                "name": "/neuronetz-redis-1",
                "image": "redis:7.4.6",
                "running": True,
                "networks": ["neuronetz_data"],
                "env": [],
            },
        },
        # docker ps lists the newest first: the embedded one is not first here.
        "ps_order": [
            "beef00000002",
            "ab0000000005",
            "c0ffee000001",
            "dead00000004",
            "cafe00000003",
        ],
        "compose_ps": {"gateway": ["9a7e00000001"]},
    }


EXPECTED = [
    {"name": "neuronetz-ollama-1", "url": "http://neuronetz-ollama-1:11434"},
    {"name": "ollama-gpu2", "url": "http://ollama-gpu2:11434", "token": TOKEN_GPU2},
    {"name": "ollama-cpu3", "url": "http://ollama-cpu3:11500", "token": TOKEN_CPU3},
]


@dataclass
class Host:
    """A project directory with .env and the stand-in docker's state and call log."""

    root: Path
    state: dict[str, Any] = field(default_factory=host_state)

    def __post_init__(self) -> None:
        self.project = self.root / "project"
        self.project.mkdir()
        self.env_file.write_text(ENV_BEFORE)
        self.bin = self.root / "bin"
        self.bin.mkdir()
        docker = self.bin / "docker"
        docker.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        docker.chmod(0o755)
        self.save()

    @property
    def env_file(self) -> Path:
        return self.project / ".env"

    @property
    def state_file(self) -> Path:
        return self.root / "docker-state.json"

    @property
    def log_file(self) -> Path:
        return self.root / "docker-calls.jsonl"

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def calls(self) -> list[list[str]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def run(
        self, *args: str, path: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": path if path is not None else f"{self.bin}:{os.environ['PATH']}",
            "HOME": str(self.root),
            "WIRE_PROJECT_DIR": str(self.project),
            "WIRE_HEALTH_TIMEOUT": "5",
            "FAKE_DOCKER_STATE": str(self.state_file),
            "FAKE_DOCKER_LOG": str(self.log_file),
            **env,
        }
        return subprocess.run(
            [BASH, str(SCRIPT), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def backends_lines(self) -> list[str]:
        return [
            ln for ln in self.env_file.read_text().splitlines() if ln.startswith("OLLAMA_BACKENDS=")
        ]

    def backends(self) -> list[dict[str, str]]:
        (line,) = self.backends_lines()
        value = line.removeprefix("OLLAMA_BACKENDS=")
        assert value[0] == value[-1] == "'", line
        return list(json.loads(value[1:-1]))
