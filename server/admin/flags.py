"""The CLI's flags: one table of the tenant/key settings, parsed by hand from the strings typed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import fire

from models import LIMIT_FIELDS
from server.admin.service import KEEP, Changes, Keep

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., None])
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

# The settings a tenant or key takes (create-tenant, create-key, set-limits), declared once.
SETTINGS: dict[str, str] = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "max_concurrent": "requests in flight at once",
    "daily_tokens": "daily token budget",
    "monthly_tokens": "monthly token budget",
    "total_tokens": "total token budget",
    "models": "allowed models, comma-separated (none = all)",
    "log_prompts": "store prompts and answers (on/off; inherit on a key)",
    "prompt_ttl_days": "days a stored prompt is kept",
}
SETTINGS_HELP = "Settings (tenant or key):\n" + "\n".join(
    f"  --{name.replace('_', '-'):<18} {what}" for name, what in SETTINGS.items()
)


def with_settings(method: F) -> F:
    """Append the settings table to a command's help (its **settings take those flags)."""
    method.__doc__ = f"{method.__doc__}\n\n{SETTINGS_HELP}"
    return method


class CliError(Exception):
    """A failed command; main() prints it as one `error: ...` line and exits 1."""


class UsageError(CliError):
    """The command line itself is wrong (unknown command or flag, a missing flag): exit 2."""


def raw(method: F) -> F:
    """Let fire pass every argument as the string typed (no literal parsing)."""
    return fire.decorators.SetParseFn(str)(method)  # type: ignore[no-any-return]


def text(value: str | None, flag: str) -> str | None:
    """An optional string flag; a bare `--flag` without a value is a usage error."""
    if value == "True":
        raise UsageError(f"{flag} needs a value")
    return value


def required(value: str | None, flag: str) -> str:
    """A string flag that must be given."""
    given = text(value, flag)
    if given is None or not given.strip():
        raise UsageError(f"{flag} is required")
    return given


def switch(value: str | None, flag: str) -> bool | None:
    """An on/off flag (`--json`, `--json=false`); None when absent."""
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise CliError(f"{flag} takes no value (or true/false), got {value!r}")


def count(value: str | None, flag: str, *, clearable: bool) -> int | None | Keep:
    """A whole number >= 0; `none` clears it when clearable; KEEP when absent."""
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


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def changes(given: Mapping[str, Any]) -> Changes:
    """The Changes named by the settings flags in `given`; any other flag is a mistake."""
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise UsageError(f"no option {_flag_name(unknown[0])}")
    limits = {n: count(given.get(n), _flag_name(n), clearable=True) for n in LIMIT_FIELDS}
    models_text = text(given.get("models"), "--models")
    models: list[str] | None | Keep = KEEP
    if models_text is not None:
        models = None if models_text.strip().lower() == "none" else models_text.split(",")
    log_prompts: str | None = given.get("log_prompts")
    prompts: bool | None | Keep = KEEP
    if log_prompts is not None:
        inherit = log_prompts.strip().lower() in ("none", "inherit")
        prompts = None if inherit else switch(log_prompts, "--log-prompts")
    return Changes(
        limits={k: v for k, v in limits.items() if not isinstance(v, Keep)},
        models=models,
        log_prompts=prompts,
        prompt_ttl_days=count(given.get("prompt_ttl_days"), "--prompt-ttl-days", clearable=True),
    )
