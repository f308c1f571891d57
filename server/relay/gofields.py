"""Object fields resolved as Go's encoding/json resolves struct fields, ambiguity refused.

Go matches an object key to a struct field case-insensitively with simple case folding (so
`Model`, `MODEL`, `mod\\u0065l` and `optionſ` all name a field), and when several keys match
one field the last wins. The gateway decides on the same reading, and refuses a body in which
a field it governs is spelled more than once: such a body has no legitimate use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from server.errors import BadRequest

# The only non-ASCII runes whose simple-fold orbit holds an ASCII letter (Go's foldName maps a
# rune to the smallest of its orbit): LONG S and KELVIN SIGN. Every other non-ASCII rune folds
# to a non-ASCII one (dotless ı and dotted İ fold to themselves), so it can never make a key
# name an ASCII field and is kept as it is.
_ASCII_FOLDS = {"\u017f": "S", "\u212a": "K"}


@lru_cache(maxsize=4096)
def fold(name: str) -> str:
    """Go's folded form of a field name, as far as it decides a match with an ASCII name."""
    if name.isascii():
        return name.upper()
    return "".join(ch.upper() if ch.isascii() else _ASCII_FOLDS.get(ch, ch) for ch in name)


def values(obj: Mapping[str, Any], folded: str) -> Iterator[Any]:
    """Every value of `obj` whose key folds to `folded` (Go would read the last of them)."""
    for key, value in obj.items():
        if fold(key) == folded:
            yield value


class Fields:
    """The governed fields of one JSON object, each found under at most one spelling."""

    def __init__(self, obj: Mapping[str, Any], governed: Iterable[str], where: str = "") -> None:
        wanted = {fold(name): name for name in governed}
        self.keys: dict[str, str] = {}  # canonical name -> the key the client used
        for key in obj:
            canonical = wanted.get(fold(key))
            if canonical is None:
                continue
            if canonical in self.keys:
                raise ambiguous(where + canonical)
            self.keys[canonical] = key
        self._obj = obj

    def get(self, name: str) -> Any:
        """The value of a governed field (None when absent or null)."""
        key = self.keys.get(name)
        return None if key is None else self._obj[key]

    def has(self, name: str) -> bool:
        """Whether the field is present (even as null)."""
        return name in self.keys

    def rest(self) -> dict[str, Any]:
        """The object without any governed field (what passes through unchanged)."""
        spelled = set(self.keys.values())
        return {k: v for k, v in self._obj.items() if k not in spelled}


def ambiguous(name: str) -> BadRequest:
    """The 400 for a governed field given more than once."""
    return BadRequest(
        f"field '{name}' is given more than once (in several spellings or twice); "
        "send it once, spelled as documented"
    )


class _Pairs(dict[str, Any]):
    """A decoded object that remembers which keys it saw more than once."""

    repeated: frozenset[str] = frozenset()


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice: set[str] = set()
        for key, _ in pairs:
            (twice if key in seen else seen).add(key)
        obj.repeated = frozenset(twice)
    return obj


def repeated_keys(raw: bytes, paths: Mapping[str, Iterable[str]]) -> None:
    """Refuse an exact key given twice at a governed place (decoders keep only the last).

    `paths` maps an object's place ("" = the top level, or a top-level field) to the governed
    names in it. Only run when a cheap scan of the bytes says a repeat is possible.
    """
    try:
        top = json.loads(raw, object_pairs_hook=_pairs)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(top, _Pairs):
        return
    for place, names in paths.items():
        if place:
            inner = Fields(top, (place,)).get(place)
            obj = inner if isinstance(inner, _Pairs) else None
        else:
            obj = top
        if obj is None:
            continue
        for name in names:
            if name in obj.repeated:
                raise ambiguous(f"{place}.{name}" if place else name)


# A key holding a \\u escape: a string with an escape, closed and followed by a colon.
_ESCAPED_KEY = re.compile(rb'"[^"\\]{0,64}\\u[0-9a-fA-F]{4}[^"]{0,256}"\s*:')


def may_repeat(raw: bytes, names: Iterable[str]) -> bool:
    """Whether a governed key could appear twice: it occurs twice, or a key is escaped."""
    if any(raw.count(b'"' + name.encode() + b'"') > 1 for name in names):
        return True
    return b"\\u" in raw and _ESCAPED_KEY.search(raw) is not None
