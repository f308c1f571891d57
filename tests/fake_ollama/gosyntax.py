"""The first syntax error of a JSON value, worded as Go's json.Decoder words it."""

from __future__ import annotations

import json
from collections.abc import Callable


def _quote_char(byte: int) -> str:
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    char = chr(byte)
    if char.isprintable():
        return f"'{char}'"
    if byte < 0x20 or byte == 0x7F:
        return "'" + json.dumps(char)[1:-1].replace("\\u00", "\\x") + "'"
    return f"'\\u{byte:04x}'"


class _Syntax(Exception):
    pass


class _Scanner:
    """Just enough of Go's scanner to name the first syntax error of a value."""

    WS = b" \t\r\n"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.depth = 0

    def fail(self, context: str) -> _Syntax:
        if self.pos >= len(self.data):
            return _Syntax("unexpected EOF")
        return _Syntax(f"invalid character {_quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int:
        while self.pos < len(self.data) and self.data[self.pos] in self.WS:
            self.pos += 1
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def value(self) -> None:
        char = self.peek()
        if char == ord("{"):
            self.container(ord("}"), self.member, "after object key:value pair")
        elif char == ord("["):
            self.container(ord("]"), self.value, "after array element")
        elif char == ord('"'):
            self.string()
        elif char == ord("-") or ord("0") <= char <= ord("9"):
            self.number()
        else:
            for word in (b"true", b"false", b"null"):
                if char == word[0]:
                    return self.literal(word)
            raise self.fail("looking for beginning of value")
        return None

    def container(self, end: int, item: Callable[[], None], after: str) -> None:
        self.depth += 1
        if self.depth > 10000:
            raise _Syntax("exceeded max depth")
        self.pos += 1
        if self.peek() == end:
            self.pos += 1
            self.depth -= 1
            return
        while True:
            item()
            char = self.peek()
            if char == end:
                self.pos += 1
                self.depth -= 1
                return
            if char != ord(","):
                raise self.fail(after)
            self.pos += 1

    def member(self) -> None:
        if self.peek() != ord('"'):
            raise self.fail("looking for beginning of object key string")
        self.string()
        if self.peek() != ord(":"):
            raise self.fail("after object key")
        self.pos += 1
        self.value()

    def string(self) -> None:
        self.pos += 1
        data = self.data
        while self.pos < len(data):
            char = data[self.pos]
            if char == ord('"'):
                self.pos += 1
                return
            if char < 0x20:
                raise self.fail("in string literal")
            if char == ord("\\"):
                self.pos += 1
                if self.pos >= len(data):
                    break
                esc = data[self.pos]
                if esc == ord("u"):
                    for _ in range(4):
                        self.pos += 1
                        if self.pos >= len(data):
                            raise self.fail("")
                        if chr(data[self.pos]) not in "0123456789abcdefABCDEF":
                            raise self.fail("in \\u hexadecimal character escape")
                elif esc not in b'"\\/bfnrt':
                    raise self.fail("in string escape code")
            self.pos += 1
        raise _Syntax("unexpected EOF")

    def digits(self, context: str) -> None:
        if self.pos >= len(self.data) or not chr(self.data[self.pos]).isdigit():
            raise self.fail(context)
        while self.pos < len(self.data) and chr(self.data[self.pos]).isdigit():
            self.pos += 1

    def number(self) -> None:
        data = self.data
        if data[self.pos] == ord("-"):
            self.pos += 1
            if self.pos < len(data) and data[self.pos] == ord("0"):
                self.pos += 1
            else:
                self.digits("in numeric literal")
        elif data[self.pos] == ord("0"):
            self.pos += 1
        else:
            self.digits("in numeric literal")
        if self.pos < len(data) and data[self.pos] == ord("."):
            self.pos += 1
            self.digits("after decimal point in numeric literal")
        if self.pos < len(data) and data[self.pos] in b"eE":
            self.pos += 1
            if self.pos < len(data) and data[self.pos] in b"+-":
                self.pos += 1
            self.digits("in exponent of numeric literal")

    def literal(self, word: bytes) -> None:
        for i, expected in enumerate(word):
            if self.pos >= len(self.data):
                raise _Syntax("unexpected EOF")
            if self.data[self.pos] != expected:
                name = word.decode()
                raise self.fail(f"in literal {name} (expecting {_quote_char(expected)})")
            self.pos += 1


def syntax_error(body: bytes) -> str:
    """The message of json.Decoder for the first syntax error in `body`."""
    scanner = _Scanner(body)
    try:
        scanner.value()
    except _Syntax as err:
        return str(err)
    return "invalid character looking for beginning of value"  # not reached for valid JSON
