"""The `.env` file, read as users expect (python-dotenv: comments, quotes, `export`, multi-line)."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables set in `path` (none when it does not exist); no interpolation."""
    if not path.is_file():
        return {}
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {name: value for name, value in values.items() if value is not None}
