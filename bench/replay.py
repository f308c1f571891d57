"""A near-free zero-delay upstream: answers each distinct request with the fake's own recorded reply.

The fake Ollama (tests/fake_ollama) costs about 0.4 ms of CPU per request, so on the load core
beside wrk it caps every target near 2,000 req/s. This server asks the fake once per distinct
(method, path, body) and then replays the recorded status, headers and body chunks (each chunk its
own write, as the fake sends them), so the gateway sees the fake's exact bytes at a fraction of
the cost. GET requests (the gateway's probes) always go to the fake. GET /_replay/stats counts.
"""

# Run by the bench: python bench/replay.py --port N --upstream http://127.0.0.1:M

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import urlsplit

MAX_ENTRIES = 256
SKIP = {"content-length", "transfer-encoding", "connection", "keep-alive", "date"}


class Reply:
    """One recorded answer, pre-rendered: the head and the framed body chunks."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        chunked: bool,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in SKIP]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            self.parts = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c] + [b"0\r\n\r\n"]
        else:
            lines.append(f"Content-Length: {sum(len(c) for c in chunks)}")
            self.parts = [b"".join(chunks)]
        self.head = ("\r\n".join([*lines, "Connection: keep-alive"]) + "\r\n\r\n").encode()

    def write(self, writer: asyncio.StreamWriter) -> None:
        """Write it (the head with the first part, then each further part on its own)."""
        writer.write(self.head + self.parts[0])
        for part in self.parts[1:]:
            writer.write(part)


async def _read_body(reader: asyncio.StreamReader, fields: dict[str, str]) -> bytes:
    if fields.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            out += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return out
    n = int(fields.get("content-length", "0"))
    return await reader.readexactly(n) if n else b""


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:] if h)]
    return lines[0], headers


class Replayer:
    """The server: a cache of replies, filled from the upstream on first sight."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cache: dict[tuple[str, str, bytes], Reply] = {}
        self.hits = self.misses = 0

    async def fetch(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> Reply:
        """Ask the upstream on a fresh connection and record the whole answer."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            keep = [(k, v) for k, v in headers if k.lower() not in SKIP | {"host"}]
            head = [
                f"{method} {path} HTTP/1.1",
                f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(body)}",
                "Connection: close",
            ]
            head += [f"{k}: {v}" for k, v in keep]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status_line, got = await _read_head(reader)
            fields = {k.lower(): v for k, v in got}
            chunked = fields.get("transfer-encoding", "").lower() == "chunked"
            chunks: list[bytes] = []
            if chunked:
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    chunks.append((await reader.readexactly(size + 2))[:-2])
            elif "content-length" in fields:
                chunks.append(await reader.readexactly(int(fields["content-length"])))
            else:
                chunks.append(await reader.read())
            _, code, reason = (status_line.split(" ", 2) + [""])[:3]
            return Reply(int(code), reason, got, chunks, chunked)
        finally:
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: requests one after another (keep-alive)."""
        try:
            while True:
                request_line, headers = await _read_head(reader)
                method, path, _ = request_line.split(" ", 2)
                fields = {k.lower(): v for k, v in headers}
                body = await _read_body(reader, fields)
                if path == "/_replay/stats":
                    data = json.dumps(
                        {"hits": self.hits, "misses": self.misses, "entries": len(self.cache)}
                    ).encode()
                    Reply(200, "OK", [("Content-Type", "application/json")], [data], False).write(
                        writer
                    )
                elif method == "POST" and (reply := self.cache.get((method, path, body))):
                    self.hits += 1
                    reply.write(writer)
                else:
                    reply = await self.fetch(method, path, headers, body)
                    if method == "POST":
                        self.misses += 1
                        if len(self.cache) < MAX_ENTRIES:
                            self.cache[(method, path, body)] = reply
                    reply.write(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _main(port: int, upstream: str) -> None:
    server = await asyncio.start_server(
        Replayer(upstream).serve, "127.0.0.1", port, limit=2**20, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve until SIGTERM."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    args = ap.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(args.port, args.upstream))
    else:
        uvloop.run(_main(args.port, args.upstream))


if __name__ == "__main__":
    main()
