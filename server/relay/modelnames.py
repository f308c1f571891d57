"""Model names as Ollama matches them, and the cloud models that spend the operator's account."""

from __future__ import annotations

from server.errors import Forbidden

DEFAULT_HOST = "registry.ollama.ai/"


def _source_suffix(name: str) -> tuple[str, str | None]:
    """(base, "cloud" | "local" | None): Ollama's explicit source suffix of a name."""
    idx = name.rfind(":")
    if idx < 0:
        return name, None
    suffix = name[idx + 1 :].strip()
    lowered = suffix.lower()
    if lowered in ("cloud", "local"):
        return name[:idx], lowered
    if "/" not in suffix and lowered.endswith("-cloud"):
        return name[: idx + 1] + suffix[: -len("-cloud")], "cloud"
    return name, None


def is_cloud(name: str) -> bool:
    """Whether Ollama would serve this name from ollama.com with the backend's own account."""
    return _source_suffix(name.strip())[1] == "cloud"


def check_cloud(name: str, allowed: bool) -> None:
    """403 for a cloud model unless the operator allows them (ALLOW_CLOUD_MODELS)."""
    if not allowed and is_cloud(name):
        raise Forbidden(
            f"model '{name}' is a cloud model (served by ollama.com on the operator's "
            "account) and is not available through this gateway"
        )


def normalise_model(name: str) -> str:
    """Ollama's equivalence: case-insensitive, `x` = `x:latest`, `library/x` = `x`, `:local`."""
    name = name.strip().lower()
    base, source = _source_suffix(name)
    if source == "local":
        name = base
    name = name.removeprefix(DEFAULT_HOST).removeprefix("library/")
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name
