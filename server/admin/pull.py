"""`pull-model`: the operator pulls a model onto one backend, with the backend's own token.

The block list stays as it is for clients: this talks to the backend directly, never through the
gateway, and shows Ollama's pull stream (NDJSON progress lines) as a progress bar.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import httpx

from config import Backend, Settings
from server.admin.flags import CliError, UsageError
from server.relay.upstream import request_headers

BAR = 30


def _backend(settings: Settings, name: str | None) -> Backend:
    if name is None:
        if len(settings.backends) == 1:
            return settings.backends[0]
        names = ", ".join(b.name for b in settings.backends)
        raise UsageError(f"pull-model needs --backend (one of: {names})")
    for backend in settings.backends:
        if backend.name == name:
            return backend
    names = ", ".join(b.name for b in settings.backends)
    raise CliError(f"no backend named {name!r} (configured: {names})")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def progress_line(event: dict[str, Any]) -> str:
    """One line for a progress event: the status, and a bar when it has sizes."""
    status = str(event.get("status", ""))
    total, done = event.get("total"), event.get("completed")
    if isinstance(total, int) and total > 0:
        part = (done if isinstance(done, int) else 0) / total
        filled = int(part * BAR)
        bar = "#" * filled + "-" * (BAR - filled)
        return f"{status} [{bar}] {part:4.0%} {_size(done or 0)}/{_size(total)}"
    return status


def pull(settings: Settings, model: str, backend_name: str | None, out: IO[str]) -> None:
    """Pull `model` onto the backend, showing progress; raise CliError on Ollama's error."""
    backend = _backend(settings, backend_name)
    headers = request_headers({"user-agent": "neuronetz-gateway-pull"}, backend)
    terminal = out.isatty()
    last = ""
    timeout = httpx.Timeout(settings.upstream_connect_timeout, read=None)
    try:
        with httpx.stream(
            "POST",
            backend.url + "/api/pull",
            json={"model": model, "stream": True},
            headers=headers,
            timeout=timeout,
        ) as response:
            if response.status_code != 200:
                response.read()
                raise CliError(f"{backend.name}: {response.status_code} {_error(response.text)}")
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                event = json.loads(raw)
                if "error" in event:
                    raise CliError(f"{backend.name}: {event['error']}")
                line = progress_line(event)
                if terminal:
                    out.write("\r" + line.ljust(len(last)))
                elif line.split(" [", 1)[0] != last.split(" [", 1)[0]:
                    out.write(line + "\n")
                last = line
    except httpx.HTTPError as exc:
        raise CliError(f"{backend.name} at {backend.url}: {type(exc).__name__}") from exc
    except ValueError as exc:
        raise CliError(f"{backend.name} sent a line that is not JSON") from exc
    if terminal:
        out.write("\n")
    if last != "success":
        raise CliError(f"{backend.name}: the pull ended without success ({last or 'no output'})")
    print(f"pulled {model} onto {backend.name}", file=sys.stdout)


def _error(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    return str(data.get("error", data))[:200] if isinstance(data, dict) else text[:200]
