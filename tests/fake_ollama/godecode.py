"""Decode JSON request bodies the way Go's encoding/json decodes them into structs.

Ollama binds bodies with gin's ShouldBindJSON (a json.Decoder reading one value into a struct).
What Go does, and this module with it (Go 1.26 decode.go; see reference/ollama-api.md §1a):

- object keys match struct fields exactly, else case-insensitively with Unicode simple case
  folding (`MODEL`, `optionſ`, a key with U+212A KELVIN SIGN folding to `k`), after escapes
  are decoded; on a fold collision the first field in declaration order wins;
- each key that maps to a field assigns it again, so the last one wins; a second object for a
  struct, pointer-to-struct or map field merges into the first, a second array replaces;
- unknown keys are ignored, and so is anything after the first complete JSON value;
- `null` sets pointers, maps, slices and interfaces to nil and leaves anything else as it was;
- invalid UTF-8 and lone surrogates in strings become U+FFFD;
- numbers: into int fields only integer literals in range (else `cannot unmarshal number 0.5
  into Go struct field …`), into float64/interface{} anything finite in range; NaN/Infinity
  are not JSON;
- a type mismatch is remembered (the first one is reported) and decoding goes on; an
  UnmarshalTypeError returned by a custom UnmarshalJSON aborts at once.

Decoded structs are dicts holding the fields that were assigned (JSON names as keys);
`interface{}` values are plain Python values (objects as dicts, numbers as floats).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .gofold import fold_name
from .gosyntax import syntax_error

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "FLOAT32",
    "FLOAT64",
    "INT",
    "RAW",
    "STRING",
    "Custom",
    "GoError",
    "GoJSONError",
    "GoType",
    "Map",
    "Num",
    "Obj",
    "Ptr",
    "Raw",
    "Slice",
    "Struct",
    "UnmarshalTypeError",
    "bytes_type",
    "clean",
    "decode",
    "fold_name",
    "is_string",
    "kind_of",
    "parse",
    "to_any",
    "unmarshal",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_LITERAL = re.compile(r"-?\d+\Z")
MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1


def _one_byte_replace(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "\ufffd", err.start + 1  # Go replaces each invalid byte on its own


codecs.register_error("go_json_replace", _one_byte_replace)


# --- errors -----------------------------------------------------------------------------------


class GoJSONError(ValueError):
    """A body Go would reject; str() is Go's err.Error(). `eof` marks an empty body (io.EOF)."""

    def __init__(self, message: str, eof: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.eof = eof


class GoError(Exception):
    """A plain error returned by a custom UnmarshalJSON (fmt.Errorf and the like)."""


@dataclass
class UnmarshalTypeError(Exception):
    """Go's *json.UnmarshalTypeError: a JSON value that does not fit the Go type."""

    value: str  # "string", "number", "number 0.5", "object", ...
    type: str  # Go type as reflect.Type.String() prints it, e.g. "[]api.Message"
    struct: str = ""
    field: str = ""
    err: str | None = None  # set when it wraps a custom unmarshaler's error

    def __str__(self) -> str:
        if self.err is not None:
            return self.err
        if self.struct or self.field:
            return (
                f"json: cannot unmarshal {self.value} into Go struct field "
                f"{self.struct}.{self.field} of type {self.type}"
            )
        return f"json: cannot unmarshal {self.value} into Go value of type {self.type}"


class _Abort(Exception):
    """An error that stops decoding (Go returns it instead of saving it)."""

    def __init__(self, error: UnmarshalTypeError) -> None:
        super().__init__(str(error))
        self.error = error


# --- parsed JSON nodes ------------------------------------------------------------------------


class Num(str):
    """A JSON number, kept as its literal text."""


class Obj:
    """A JSON object with every key/value pair in document order (duplicates kept)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"Obj({self.pairs!r})"


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(
    object_pairs_hook=Obj, parse_float=Num, parse_int=Num, parse_constant=_reject_constant
)


def clean(text: str) -> str:
    """Replace lone surrogates (from \\uD800-style escapes) by U+FFFD, as Go does."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def parse(body: bytes) -> Any:
    """The first JSON value of `body` as nodes (Obj, list, str, Num, bool, None).

    Raises GoJSONError with json.Decoder's message: "EOF" for an empty body, "unexpected EOF"
    for a truncated one, the scanner's "invalid character …" otherwise.
    """
    text = body.decode("utf-8", "go_json_replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise GoJSONError("EOF", eof=True)
    try:
        node, _ = _DECODER.raw_decode(text, start)
    except RecursionError as err:  # Go allows 10000 levels, Python's parser about 1000
        raise GoJSONError("exceeded max depth") from err
    except ValueError as err:
        raise GoJSONError(syntax_error(body)) from err
    return node


def is_string(node: Any) -> bool:
    """True for a JSON string node (not a number, which is kept as its literal text)."""
    return isinstance(node, str) and not isinstance(node, Num)


def kind_of(node: Any) -> str:
    """The JSON kind Go names in type errors."""
    if isinstance(node, Obj):
        return "object"
    if isinstance(node, list):
        return "array"
    if isinstance(node, Num):
        return "number"
    if isinstance(node, str):
        return "string"
    if isinstance(node, bool):
        return "bool"
    return "null"


# --- the decoder ------------------------------------------------------------------------------


@dataclass
class _State:
    saved: Exception | None = None
    struct: str | None = None  # Name() of the innermost struct being decoded
    stack: list[str] = field(default_factory=list)

    def context(self, error: UnmarshalTypeError) -> UnmarshalTypeError:
        """addErrorContext: name the struct and the field path of the current position."""
        if self.struct is not None or self.stack:
            error.struct = self.struct or ""
            error.field = ".".join([*self.stack, error.field] if error.field else self.stack)
        return error

    def save(self, error: Exception) -> None:
        """saveError: keep the first error (type errors with their context)."""
        if self.saved is None:
            self.saved = self.context(error) if isinstance(error, UnmarshalTypeError) else error

    def mismatch(self, node: Any, go_type: str) -> None:
        """Save a type error for a value of the wrong JSON kind."""
        self.save(UnmarshalTypeError(kind_of(node), go_type))


class GoType:
    """A Go type a JSON value decodes into."""

    go_name = "?"

    def zero(self) -> Any:
        """The zero value (None for nil and for scalars, {} for a struct)."""
        return None

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        """The new value of a Go variable holding `current` after decoding `node` into it."""
        raise NotImplementedError


class _Scalar(GoType):
    def __init__(self, go_name: str, accept: Callable[[Any, Any, _State], Any]) -> None:
        self.go_name = go_name
        self._accept = accept

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        if node is None:
            return current  # null into a string, bool or number: no effect
        return self._accept(node, current, state)


def _string(node: Any, current: Any, state: _State) -> Any:
    if isinstance(node, str) and not isinstance(node, Num):
        return clean(node)
    state.mismatch(node, "string")
    return current  # a mismatch leaves the field as it was


def _bool(node: Any, current: Any, state: _State) -> Any:
    if isinstance(node, bool):
        return node
    state.mismatch(node, "bool")
    return current


class _Int(_Scalar):
    def __init__(self, go_name: str = "int", bits: int = 64) -> None:
        super().__init__(go_name, self._int)
        self.low, self.high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def _int(self, node: Any, current: Any, state: _State) -> Any:
        if not isinstance(node, Num):
            state.mismatch(node, self.go_name)
            return current
        if _INT_LITERAL.match(node) and self.low <= int(node) <= self.high:
            return int(node)
        state.save(UnmarshalTypeError(f"number {node}", self.go_name))
        return current


class _Float(_Scalar):
    def __init__(self, go_name: str, bits: int) -> None:
        super().__init__(go_name, self._float)
        self.bits = bits

    def _float(self, node: Any, current: Any, state: _State) -> Any:
        if not isinstance(node, Num):
            state.mismatch(node, self.go_name)
            return current
        value = float(node)
        try:
            if math.isinf(value):
                raise OverflowError
            if self.bits == 32:
                value = struct.unpack("<f", struct.pack("<f", value))[0]
        except OverflowError:
            state.save(UnmarshalTypeError(f"number {node}", self.go_name))
            return current
        return value


class _Any(GoType):
    go_name = "interface {}"

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        return to_any(node, state)


def to_any(node: Any, state: _State | None = None) -> Any:
    """A node as Go's interface{} holds it: map (last key wins), []any, float64, string, bool."""
    if isinstance(node, Obj):
        return {clean(k): to_any(v, state) for k, v in node.pairs}
    if isinstance(node, list):
        return [to_any(v, state) for v in node]
    if isinstance(node, Num):
        value = float(node)
        if math.isinf(value):
            if state is not None:
                state.save(UnmarshalTypeError(f"number {node}", "float64"))
            return None
        return value
    if isinstance(node, str):
        return clean(node)
    return node


@dataclass(frozen=True)
class Raw:
    """A json.RawMessage: the parsed value, to decode again later (`unmarshal(raw.node, T)`)."""

    node: Any

    def value(self) -> Any:
        """The value as interface{} holds it."""
        return to_any(self.node)


class _Raw(GoType):
    go_name = "json.RawMessage"

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        return Raw(node)


class _Bytes(GoType):
    """[]byte (or a named byte slice): base64 text, standard alphabet with padding."""

    def __init__(self, go_name: str = "[]uint8") -> None:
        self.go_name = go_name

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        if node is None:
            return None
        if not isinstance(node, str) or isinstance(node, Num):
            state.mismatch(node, self.go_name)
            return current
        text = clean(node).replace("\r", "").replace("\n", "")
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            bad = re.search(r"[^A-Za-z0-9+/=]|=[^=]", text)
            where = bad.start() if bad is not None else len(text) - len(text) % 4
            state.save(GoError(f"illegal base64 data at input byte {where}"))
            return current


class Slice(GoType):
    """[]T: an array replaces the slice, elements decoding into the old ones where they exist."""

    def __init__(self, elem: GoType, go_name: str | None = None) -> None:
        self.elem = elem
        self.go_name = go_name or f"[]{elem.go_name}"

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        if node is None:
            return None
        if not isinstance(node, list):
            state.mismatch(node, self.go_name)
            return current
        old = current if isinstance(current, list) else []
        return [
            self.elem.decode(item, old[i] if i < len(old) else self.elem.zero(), state)
            for i, item in enumerate(node)
        ]


class Map(GoType):
    """map[string]T: entries are added to the existing map; each value decodes fresh."""

    def __init__(self, elem: GoType, go_name: str | None = None) -> None:
        self.elem = elem
        self.go_name = go_name or f"map[string]{elem.go_name}"

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        if node is None:
            return None
        if not isinstance(node, Obj):
            state.mismatch(node, self.go_name)
            return current
        out: dict[str, Any] = current if isinstance(current, dict) else {}
        for key, value in node.pairs:
            out[clean(key)] = self.elem.decode(value, self.elem.zero(), state)
        return out


class Ptr(GoType):
    """*T: null sets nil; anything else decodes into the pointed-to value (kept if set)."""

    def __init__(self, elem: GoType) -> None:
        self.elem = elem
        self.go_name = elem.go_name  # type errors name the element type

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        if node is None:
            return None
        return self.elem.decode(node, self.elem.zero() if current is None else current, state)


@dataclass(frozen=True)
class _Field:
    name: str
    type: GoType


class Struct(GoType):
    """A Go struct: fields by JSON name in declaration order."""

    def __init__(
        self, go_name: str, fields: Sequence[tuple[str, GoType]], name: str | None = None
    ) -> None:
        self.go_name = go_name  # e.g. "api.ChatRequest"
        self.name = go_name.rpartition(".")[2] if name is None else name  # "" if anonymous
        self.fields: list[_Field] = []
        self._exact: dict[str, _Field] = {}
        self._folded: dict[str, _Field] = {}
        for field_name, field_type in fields:
            self.add(field_name, field_type)

    def add(self, field_name: str, field_type: GoType) -> None:
        """Append a field (for recursive types); the first field of a folded name keeps it."""
        entry = _Field(field_name, field_type)
        self.fields.append(entry)
        self._exact.setdefault(field_name, entry)
        self._folded.setdefault(fold_name(field_name), entry)

    def zero(self) -> Any:
        """A struct with no field set."""
        return {}

    def lookup(self, key: str) -> _Field | None:
        """The field a key sets: exact JSON name first, then the folded name."""
        return self._exact.get(key) or self._folded.get(fold_name(key))

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        if node is None:
            return current
        if not isinstance(node, Obj):
            state.mismatch(node, self.go_name)
            return current
        out: dict[str, Any] = current if isinstance(current, dict) else {}
        outer_struct, depth = state.struct, len(state.stack)
        for key, value in node.pairs:
            found = self.lookup(clean(key))
            if found is None:
                continue
            state.struct = self.name
            state.stack.append(found.name)
            result = found.type.decode(value, out.get(found.name), state)
            if result is None:
                out.pop(found.name, None)  # nil: the same as never set
            else:
                out[found.name] = result
            del state.stack[depth:]
            state.struct = outer_struct
        return out


class Custom(GoType):
    """A type with its own UnmarshalJSON: `hook(node, current)` returns the new value.

    The hook raises UnmarshalTypeError to abort decoding (as Go does when UnmarshalJSON
    returns one, typically from an inner json.Unmarshal) or GoError for an error that is
    saved and reported at the end. It also receives null (the pointer around it, if any,
    handles null first).
    """

    def __init__(self, go_name: str, hook: Callable[[Any, Any], Any]) -> None:
        self.go_name = go_name
        self.hook = hook

    def decode(self, node: Any, current: Any, state: _State) -> Any:
        try:
            return self.hook(node, current)
        except UnmarshalTypeError as err:
            raise _Abort(state.context(err)) from err
        except GoError as err:
            kind = "null" if node is None else kind_of(node)
            state.save(UnmarshalTypeError(kind, self.go_name, err=str(err)))
            return current


STRING: GoType = _Scalar("string", _string)
BOOL: GoType = _Scalar("bool", _bool)
INT: GoType = _Int()
FLOAT64: GoType = _Float("float64", 64)
FLOAT32: GoType = _Float("float32", 32)
ANY: GoType = _Any()
RAW: GoType = _Raw()
BYTES: GoType = _Bytes()


def bytes_type(go_name: str) -> GoType:
    """A named []byte type such as api.ImageData."""
    return _Bytes(go_name)


def unmarshal(node: Any, go_type: GoType, current: Any = None) -> Any:
    """json.Unmarshal of an already parsed value: the result, or the error Go would return."""
    state = _State()
    try:
        result = go_type.decode(node, current, state)
    except _Abort as abort:
        raise abort.error from None
    if state.saved is not None:
        raise state.saved
    return result


def decode(body: bytes, go_type: GoType) -> Any:
    """Decode a request body as json.NewDecoder(body).Decode(&v) does; raises GoJSONError."""
    node = parse(body)
    try:
        return unmarshal(node, go_type, go_type.zero())
    except (UnmarshalTypeError, GoError) as err:
        raise GoJSONError(str(err)) from err
