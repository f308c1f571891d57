"""Object fields resolved as Go's encoding/json resolves struct fields, ambiguity refused.

Go matches an object key to a struct field case-insensitively with simple case folding (so
`Model`, `MODEL`, `mod\\u0065l` and `optionſ` all name a field), and when several keys match
one field the last wins. The gateway decides on the same reading, and refuses a body in which
a field it governs is spelled more than once: such a body has no legitimate use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from server.errors import BadRequest

# Non-ASCII code points whose Go fold (ToUpper(ToLower(r))) is an ASCII letter.
_ASCII_FOLDS = {"\u017f": "S", "\u212a": "K", "\u0131": "I", "\u0130": "I"}


@lru_cache(maxsize=4096)
def fold(name: str) -> str:
    """Go's folded form of a field name: two keys name the same field iff their folds match."""
    if name.isascii():
        return name.upper()
    out = []
    for ch in name:
        if ch.isascii():
            out.append(ch.upper())
            continue
        mapped = _ASCII_FOLDS.get(ch)
        if mapped is None:
            lower = ch.lower()
            upper = lower.upper() if len(lower) == 1 else ch
            mapped = upper if len(upper) == 1 else lower
        out.append(mapped)
    return "".join(out)


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


def may_repeat(raw: bytes, names: Iterable[str]) -> bool:
    """Whether a governed key could appear twice: it occurs twice, or keys may be escaped."""
    if b"\\u" in raw:
        return True
    return any(raw.count(b'"' + name.encode() + b'"') > 1 for name in names)
