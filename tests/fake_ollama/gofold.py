"""Go's foldName (encoding/json): the key form struct fields are matched by, case-insensitively."""

from __future__ import annotations

_EXTRA_SIMPLE_FOLDS = {"\u1fd3": "\u0390", "\u1fe3": "\u03b0", "\ufb05": "\ufb06"}  # Unicode 14+
_FOLD_MIN: dict[str, str] = {}


def _simple_fold(char: str) -> str:
    """Unicode simple case folding (CaseFolding.txt statuses C and S) of one character."""
    if char in _EXTRA_SIMPLE_FOLDS:
        return _EXTRA_SIMPLE_FOLDS[char]
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()  # status F: the S mapping, where there is one, is the lowercase
    return lower if len(lower) == 1 else char


def _fold_table() -> dict[str, str]:
    if not _FOLD_MIN:
        orbits: dict[str, list[str]] = {}
        for code in range(0x1EA00):  # no cased character lies above the Adlam block
            if not 0xD800 <= code <= 0xDFFF:
                char = chr(code)
                orbits.setdefault(_simple_fold(char), []).append(char)
        for members in orbits.values():  # ascending: members[0] is the smallest rune
            for char in members[1:]:
                _FOLD_MIN[char] = members[0]
    return _FOLD_MIN


def fold_name(name: str) -> str:
    """Go's foldName: ASCII upper-cased, other runes mapped to the smallest of their fold orbit."""
    if name.isascii():
        return name.upper()
    table = _fold_table()
    return "".join(c.upper() if c < "\x80" else table.get(c, c) for c in name)
