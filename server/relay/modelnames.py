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


SERVER_TOOL_PREFIXES = ("web_search", "web_fetch")


def check_server_tools(tools: object, allowed: bool) -> None:
    """403 for a tool Ollama runs itself on ollama.com (web search, web fetch) unless allowed.

    Ollama answers a `/v1/messages` tool of type `web_search_…` and a `/v1/responses` tool of
    type `web_search` by searching on the backend's ollama.com account and generating again
    (up to three times, each with the request's own cap): the operator's account and more
    output than was reserved. Client tools (`type: function`, or Anthropic tools with an
    input schema) are the client's business and pass.
    """
    if allowed or not isinstance(tools, list):
        return
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = next((v for k, v in tool.items() if k.lower() == "type"), None)
        if isinstance(kind, str) and kind.strip().lower().startswith(SERVER_TOOL_PREFIXES):
            raise Forbidden(
                f"tool type '{kind}' runs on ollama.com with the operator's account and is "
                "not available through this gateway"
            )
