"""Parsing the CLI's flags by hand: fire's literal parsing is off, values arrive as typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import fire

from models import LIMIT_FIELDS
from server.admin import KEEP, Changes, Keep

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., None])
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class CliError(Exception):
    """A failed command; main() prints it as one `error: ...` line and exits 1."""


def _raw(method: F) -> F:
    """Let fire pass every argument as the string typed (no literal parsing)."""
    return fire.decorators.SetParseFn(str)(method)  # type: ignore[no-any-return]


def _text(value: str | None, flag: str) -> str | None:
    if value == "True":  # a bare `--flag` with no value
        raise CliError(f"{flag} needs a value")
    return value


def _required(value: str | None, flag: str) -> str:
    text = _text(value, flag)
    if text is None or not text.strip():
        raise CliError(f"{flag} is required")
    return text


def _flag(value: str | None, flag: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise CliError(f"{flag} takes no value (or true/false), got {value!r}")


def _count(value: str | None, flag: str, *, clearable: bool) -> int | None | Keep:
    if value is None:
        return KEEP
    if clearable and value.strip().lower() == "none":
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        hint = " or none" if clearable else ""
        raise CliError(f"{flag} needs a whole number >= 0{hint}, got {value!r}")
    return number


def _changes(flags: dict[str, Any]) -> Changes:
    """The Changes named by a command's limit, --models and prompt flags (its locals())."""
    limits = {n: _count(flags[n], "--" + n.replace("_", "-"), clearable=True) for n in LIMIT_FIELDS}
    models: str | None = _text(flags["models"], "--models")
    model_list: list[str] | None | Keep = KEEP
    if models is not None:
        model_list = None if models.strip().lower() == "none" else models.split(",")
    log_prompts: str | None = flags["log_prompts"]
    prompts: bool | None | Keep = KEEP
    if log_prompts is not None:
        inherit = log_prompts.strip().lower() in ("none", "inherit")
        prompts = None if inherit else _flag(log_prompts, "--log-prompts")
    return Changes(
        limits={k: v for k, v in limits.items() if not isinstance(v, Keep)},
        models=model_list,
        log_prompts=prompts,
        prompt_ttl_days=_count(flags["prompt_ttl_days"], "--prompt-ttl-days", clearable=True),
    )
