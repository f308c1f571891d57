"""The CLI's flags: one table of the tenant/key settings, parsed by hand from the strings typed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
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


def whole(value: str | None, flag: str, low: int, high: int) -> int | None:
    """A whole number in [low, high]; None when absent."""
    given = text(value, flag)
    if given is None:
        return None
    try:
        number = int(given)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise CliError(f"{flag} needs a whole number from {low} to {high}, got {given!r}")
    return number


def moment(value: str | None, flag: str, *, end: bool = False) -> datetime | None:
    """An ISO 8601 time (UTC unless it says otherwise); a bare date is the start of that day,
    or with `end` the start of the next one (so `--until 2026-11-30` includes that day)."""
    given = text(value, flag)
    if given is None:
        return None
    try:
        if len(given.strip()) == 10:
            start = datetime.combine(date.fromisoformat(given.strip()), time(), UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(given.strip())
    except ValueError as exc:
        raise CliError(
            f"{flag} needs an ISO 8601 time like 2026-11-30T12:00Z, got {given!r}"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def day(value: str | None, flag: str) -> date | None:
    """A date (YYYY-MM-DD); None when absent."""
    given = text(value, flag)
    if given is None:
        return None
    try:
        return date.fromisoformat(given.strip())
    except ValueError as exc:
        raise CliError(f"{flag} needs a date like 2026-11-30, got {given!r}") from exc


def choice(value: str | None, flag: str, options: Sequence[str]) -> str | None:
    """One of `options`; None when absent."""
    given = text(value, flag)
    if given is not None and given not in options:
        raise CliError(f"{flag} must be one of {', '.join(options)}, got {given!r}")
    return given


def output_format(**flags: str | None) -> str:
    """The one output format switched on among `flags` (--json, --csv, …), else "table"."""
    chosen = [name for name, value in flags.items() if switch(value, f"--{name}")]
    if len(chosen) > 1:
        raise CliError(" and ".join(f"--{name}" for name in chosen) + " exclude each other")
    return chosen[0] if chosen else "table"
