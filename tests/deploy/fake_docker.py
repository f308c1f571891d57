"""A stand-in `docker` CLI for the wire script's tests: answers from a JSON state file."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

# The state file (FAKE_DOCKER_STATE) holds:
#   containers   {id: {"name": "/n", "image": "repo:tag", "running": bool, "networks": [...],
#                      "env": ["K=V", ...]}}
#   ps_order     ids in the order `docker ps` lists them (newest first, as Docker does)
#   compose_ps   {service: [ids]}
#   fail         [{"match": [argv items...], "stderr": "...", "code": n}]: a call whose argv
#                holds every item fails so
#   healthz      false: the gateway never answers /healthz
#   probe_rc     exit code of `neuronetz-gateway probe-ollama` in the gateway
# Every call is appended to FAKE_DOCKER_LOG as a JSON list; `network connect` and
# `compose up` change the state as Docker would.


def _load() -> tuple[Path, dict[str, Any]]:
    path = Path(os.environ["FAKE_DOCKER_STATE"])
    return path, json.loads(path.read_text())


def _find(state: dict[str, Any], ref: str) -> tuple[str, dict[str, Any]] | None:
    for cid, c in state["containers"].items():
        if ref in (cid, c["name"].lstrip("/")):
            return cid, c
    return None


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _backends_in_env() -> list[dict[str, str]]:
    """The OLLAMA_BACKENDS the recreated gateway got from ./.env (the script runs in it)."""
    text = Path(".env").read_text()
    found = re.search(r"^OLLAMA_BACKENDS='(.*)'$", text, re.MULTILINE)
    return list(json.loads(found.group(1))) if found else []


def _inspect(state: dict[str, Any], argv: list[str]) -> int:
    fmt, ref = _option(argv, "--format"), argv[-1]
    hit = _find(state, ref)
    if hit is None:
        print(f"Error: No such object: {ref}", file=sys.stderr)
        return 1
    _, c = hit
    if ".State.Running" in fmt:
        print("true" if c["running"] else "false")
    elif ".NetworkSettings.Networks" in fmt:
        print("".join(f"{n}\n" for n in sorted(c["networks"])))
    elif ".Config.Env" in fmt:
        print("".join(f"{e}\n" for e in c["env"]))
    elif fmt == "{{.Name}} {{.Config.Image}}":
        print(c["name"], c["image"])
    else:
        print(f"fake docker: unknown inspect format {fmt!r}", file=sys.stderr)
        return 99
    return 0


def _ps(state: dict[str, Any], argv: list[str]) -> int:
    wanted = set()
    for i, arg in enumerate(argv):
        if arg == "--filter" and argv[i + 1].startswith("ancestor="):
            image = argv[i + 1].removeprefix("ancestor=")
            wanted.add(image if ":" in image else f"{image}:latest")  # Docker's reading
    for cid in state["ps_order"]:
        c = state["containers"][cid]
        if c["running"] and (not wanted or c["image"] in wanted):
            print(cid)
    return 0


def _images(state: dict[str, Any], argv: list[str]) -> int:
    repo = argv[-1]
    refs = {c["image"] for c in state["containers"].values()} | set(state.get("images", []))
    for ref in sorted(refs):
        if ref.split(":")[0] == repo:
            print(ref)
    return 0


def _network_connect(path: Path, state: dict[str, Any], argv: list[str]) -> int:
    net, ref = argv[2], argv[3]
    hit = _find(state, ref)
    if hit is None:
        print(f"Error response from daemon: No such container: {ref}", file=sys.stderr)
        return 1
    _, c = hit
    if net in c["networks"]:
        print(
            f"Error response from daemon: endpoint with name {c['name'].lstrip('/')} "
            f"already exists in network {net}",
            file=sys.stderr,
        )
        return 1
    c["networks"].append(net)
    path.write_text(json.dumps(state))
    return 0


def _compose(path: Path, state: dict[str, Any], argv: list[str]) -> int:
    sub = argv[1:]
    if sub[:1] == ["version"]:
        print("Docker Compose version v2.26.1")
        return 0
    if sub[:2] == ["ps", "-q"]:
        for cid in state["compose_ps"].get(sub[2], []):
            if state["containers"][cid]["running"]:
                print(cid)
        return 0
    if sub[:2] == ["up", "-d"]:
        state["gateway_backends"] = _backends_in_env()
        path.write_text(json.dumps(state))
        print(f"Container neuronetz-{sub[2]}-1  Started", file=sys.stderr)
        return 0
    if sub[:2] == ["exec", "-T"]:
        command = sub[3:]
        if command[:2] == ["python", "-c"]:
            return 0 if state.get("healthz", True) else 1
        if command[:1] == ["neuronetz-gateway"]:
            # A CLI that shows every backend, tokens included, so the script's redaction shows.
            for b in state.get("gateway_backends", []):
                print(f"{b['name']}  {b['url']}  up  token={b.get('token', 'none')}")
            return int(state.get("probe_rc", 0)) if command[1] == "probe-ollama" else 0
    print(f"fake docker: unsupported compose call {sub}", file=sys.stderr)
    return 99


def main(argv: list[str]) -> int:
    """Answer one docker call."""
    path, state = _load()
    with open(os.environ["FAKE_DOCKER_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    for rule in state.get("fail", []):
        if all(item in argv for item in rule["match"]):
            print(rule["stderr"], file=sys.stderr)
            return int(rule.get("code", 1))
    if argv[:1] == ["compose"]:
        return _compose(path, state, argv)
    if argv[:1] == ["inspect"]:
        return _inspect(state, argv)
    if argv[:1] == ["ps"]:
        return _ps(state, argv)
    if argv[:1] == ["images"]:
        return _images(state, argv)
    if argv[:2] == ["network", "connect"]:
        return _network_connect(path, state, argv)
    print(f"fake docker: unsupported call {argv}", file=sys.stderr)
    return 99


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
