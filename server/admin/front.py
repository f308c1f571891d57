"""The CLI's own front: --help and --version as typed, usage errors (exit 2) before fire runs.

fire lists commands as Python names (`create_key`) and only notices an unknown flag after
running the command; this module answers `--help`, `COMMAND --help` and `--version` itself,
with commands spelled as they are typed, and refuses unknown commands and flags first.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from server.admin.flags import SETTINGS, UsageError

PROG = "neuronetz-gateway"
__all__ = ["PROG", "UsageError", "check", "version"]


def version() -> str:
    """The installed version of the gateway."""
    try:
        return metadata.version(PROG)
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def commands(cli: type) -> dict[str, Callable[..., Any]]:
    """The CLI's commands, by the name a user types."""
    return {
        name.replace("_", "-"): member
        for name, member in inspect.getmembers(cli, inspect.isfunction)
        if not name.startswith("_")
    }


def _summary(fn: Callable[..., Any]) -> str:
    return (inspect.getdoc(fn) or "").splitlines()[0] if fn.__doc__ else ""


def overview(cli: type) -> str:
    """`neuronetz-gateway --help`: every command with its one-line summary."""
    table = commands(cli)
    width = max(len(name) for name in table)
    lines = [f"usage: {PROG} COMMAND [--flag value ...]", "", _summary(cli), "", "commands:"]
    lines += [f"  {name.ljust(width)}  {_summary(fn)}" for name, fn in sorted(table.items())]
    lines += ["", f"{PROG} COMMAND --help shows a command's flags; {PROG} --version its version."]
    return "\n".join(lines)


def flags_of(fn: Callable[..., Any]) -> list[str]:
    """The flags a command takes, as typed (`--max-concurrent`)."""
    params = inspect.signature(fn).parameters
    names = [n for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        names += list(SETTINGS)
    return ["--" + name.replace("_", "-") for name in names]


def command_help(name: str, fn: Callable[..., Any]) -> str:
    """`neuronetz-gateway COMMAND --help`."""
    flags = " ".join(f"[{flag} …]" for flag in flags_of(fn))
    return f"usage: {PROG} {name} {flags}".rstrip() + "\n\n" + (inspect.getdoc(fn) or "")


def check(cli: type, args: Sequence[str]) -> str | None:
    """Text to print instead of running (help, version), or None; raises UsageError."""
    table = commands(cli)
    if not args or args[0] in ("-h", "--help", "help"):
        return overview(cli)
    if args[0] in ("--version", "-V", "version"):
        return f"{PROG} {version()}"
    name = args[0]
    fn = table.get(name) or table.get(name.replace("_", "-"))
    if fn is None:
        raise UsageError(f"no command {name!r} (see {PROG} --help)")
    if any(arg in ("-h", "--help") for arg in args[1:]):
        return command_help(name.replace("_", "-"), fn)
    known = {flag[2:].replace("-", "_") for flag in flags_of(fn)}
    for arg in args[1:]:
        if arg == "--":
            break
        if not arg.startswith("--"):
            continue
        key = arg[2:].split("=", 1)[0].replace("-", "_")
        if key not in known and not (key.startswith("no") and key[2:] in known):
            raise UsageError(f"{name} has no option {arg.split('=', 1)[0]} (see {name} --help)")
    return None
