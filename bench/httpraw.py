"""A minimal HTTP/1.1 client on asyncio streams, so the bench sees when each body chunk arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bench.procs import BenchError


def request_bytes(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """A keep-alive POST with a JSON body."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn:
    """One keep-alive connection; `exchange` sends a request and yields its body chunks."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=2**20
            )
        return self.reader, self.writer

    async def exchange(self, raw: bytes) -> AsyncIterator[bytes]:
        """Send `raw`; yield each body chunk as it is read (chunked or Content-Length)."""
        reader, writer = await self._open()
        writer.write(raw)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if status != 200:
            raise BenchError(f"HTTP {status} from {self.host}:{self.port}")
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers are expected
                    break
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        else:
            length = int(fields.get("content-length", "0"))
            while length > 0:
                data = await reader.read(min(length, 65536))
                if not data:
                    raise BenchError("connection closed mid-body")
                length -= len(data)
                yield data
        if fields.get("connection", "").lower() == "close":
            await self.close()

    async def close(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None
