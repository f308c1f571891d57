"""Passing upstream bytes on: unchanged (metered on the side) or minus an injected usage chunk."""

from __future__ import annotations

from typing import Protocol

import orjson

from server.accounting.meter import Meter, sse_parts

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
# /v1/completions with include_usage puts this on every chunk; removed when we asked for it.
ZERO_USAGE = b',"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}'


class Forwarder(Protocol):
    """Turns upstream chunks into the bytes the client gets, feeding the meter on the way."""

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send now for this upstream chunk (may be empty)."""

    def close(self) -> bytes:
        """Bytes still held when the upstream body ends."""


class Splitter:
    """Cuts a byte stream into records ending with `sep`; keeps the partial last one."""

    def __init__(self, sep: bytes) -> None:
        self.sep = sep
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete records (separator included) now available."""
        data = self._rest + chunk
        end = data.rfind(self.sep)
        if end < 0:
            self._rest = data
            return []
        end += len(self.sep)
        self._rest = data[end:]
        parts = data[:end].split(self.sep)[:-1]
        return [p + self.sep for p in parts]

    def rest(self) -> bytes:
        """What is left without a separator."""
        rest, self._rest = self._rest, b""
        return rest


class Passthrough:
    """Bytes unchanged; NDJSON lines / SSE events / a JSON body are shown to the meter."""

    def __init__(self, meter: Meter, content_type: str) -> None:
        self.meter = meter
        self.mode = content_type.split(";", 1)[0].strip().lower()
        self.splitter = Splitter(b"\n\n" if self.mode == SSE else b"\n")

    def feed(self, chunk: bytes) -> bytes:
        """Return the chunk as it came."""
        if self.mode == NDJSON:
            for line in self.splitter.feed(chunk):
                self.meter.ndjson(line)
        elif self.mode == SSE:
            for event in self.splitter.feed(chunk):
                self.meter.sse(event)
        else:
            self.meter.body(chunk)
        return chunk

    def close(self) -> bytes:
        """Show the meter any record without a final separator."""
        rest = self.splitter.rest()
        if self.mode == NDJSON and rest:
            self.meter.ndjson(rest)
        elif self.mode == SSE and rest:
            self.meter.sse(rest)
        elif self.mode not in (NDJSON, SSE):
            self.meter.finish_body()
        return b""


class UsageStripper:
    """SSE where the gateway asked for usage: drop the usage chunk the client did not ask for."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.splitter = Splitter(b"\n\n")

    def _pass(self, event: bytes) -> bytes:
        if self.meter.sse(event):
            return b""
        return event.replace(ZERO_USAGE, b"") if ZERO_USAGE in event else event

    def feed(self, chunk: bytes) -> bytes:
        """Whole events only, the usage-only one removed."""
        return b"".join(self._pass(e) for e in self.splitter.feed(chunk))

    def close(self) -> bytes:
        """A last event without its blank line."""
        rest = self.splitter.rest()
        return self._pass(rest) if rest else b""


def forwarder(meter: Meter, content_type: str, *, strip_usage: bool) -> Forwarder:
    """The forwarder for an upstream response of this content type."""
    is_sse = content_type.split(";", 1)[0].strip().lower() == SSE
    if strip_usage and is_sse:
        return UsageStripper(meter)
    return Passthrough(meter, content_type)


class Records:
    """Whole NDJSON lines or SSE events, metered one at a time as they go (stepped streams).

    A stream whose output is reserved step by step must be able to stop between two records,
    so bytes go on only in whole records, each shown to the meter just before it is sent;
    `strip_usage` drops the usage chunk the gateway asked for, as UsageStripper does.
    `open_block` is the Anthropic content block the client has seen start and not stop: the
    one the ending of a stream cut at the budget must stop.
    """

    def __init__(self, meter: Meter, content_type: str, *, strip_usage: bool) -> None:
        self.meter = meter
        self.is_sse = content_type.split(";", 1)[0].strip().lower() == SSE
        self.strip_usage = strip_usage and self.is_sse
        self.splitter = Splitter(b"\n\n" if self.is_sse else b"\n")
        self.open_block: int | None = None

    def cut(self, chunk: bytes) -> list[bytes]:
        """The complete records in `chunk`, not yet metered; a partial one is held."""
        return self.splitter.feed(chunk)

    def rest(self) -> list[bytes]:
        """A last record without its separator."""
        rest = self.splitter.rest()
        return [rest] if rest else []

    def take(self, record: bytes) -> bytes:
        """Meter one record; the bytes to send for it (b"" for a stripped usage chunk)."""
        if not self.is_sse:
            self.meter.ndjson(record)
            return record
        if self.meter.sse(record) and self.strip_usage:
            return b""
        return record.replace(ZERO_USAGE, b"") if self.strip_usage else record

    def sent(self, record: bytes) -> None:
        """Note a record the client got: an Anthropic content block's start or stop."""
        if not self.is_sse or b"content_block_st" not in record:
            return
        name, payload = sse_parts(record)
        if name == "content_block_stop":
            self.open_block = None
        elif name == "content_block_start":
            try:
                index = orjson.loads(payload).get("index")
            except (orjson.JSONDecodeError, AttributeError):
                return
            self.open_block = index if isinstance(index, int) else None
