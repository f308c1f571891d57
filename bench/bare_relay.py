"""The floor to compare with: a bare Sanic relay with a key check, a token bucket and aiohttp."""

# Run by the bench: python bench/bare_relay.py --port N --upstream URL
# (BENCH_RELAY_KEY_SHA256 in the environment: the hex SHA-256 of the one accepted key)

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import time
from typing import Any

import aiohttp
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json, raw

PATHS = {"/v1/chat/completions", "/v1/embeddings", "/api/chat", "/api/generate", "/api/embed"}
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class Bucket:
    """A token bucket: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def create_app(upstream: str, key_sha256: bytes, rate: float) -> Sanic[Any, Any]:
    """The relay app: POST on a few paths, relayed to `upstream`."""
    app: Sanic[Any, Any] = Sanic("bare_relay")
    app.config.AUTO_EXTEND = False  # no sanic-ext: a bare relay
    buckets: dict[bytes, Bucket] = {}

    @app.before_server_start
    async def start(app: Sanic[Any, Any]) -> None:
        connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=30)
        app.ctx.session = aiohttp.ClientSession(
            upstream, connector=connector, timeout=aiohttp.ClientTimeout(total=600, connect=5)
        )

    @app.after_server_stop
    async def stop(app: Sanic[Any, Any]) -> None:
        await app.ctx.session.close()

    @app.post("/<path:path>")
    async def relay(request: Request, path: str) -> HTTPResponse | None:
        if request.path not in PATHS:
            return json({"error": "not found"}, 404)
        auth = request.headers.get("authorization", "")
        digest = hashlib.sha256(auth.removeprefix("Bearer ").encode()).digest()
        if not auth.startswith("Bearer ") or not hmac.compare_digest(digest, key_sha256):
            return json({"error": "invalid key"}, 401)
        bucket = buckets.get(digest) or buckets.setdefault(digest, Bucket(rate, rate))
        if not bucket.take():
            return json({"error": "rate limited"}, 429, headers={"retry-after": "1"})
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        session: aiohttp.ClientSession = request.app.ctx.session
        async with session.post(request.path, data=request.body, headers=headers) as up:
            out = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
            if up.content_length is not None:
                return raw(await up.read(), up.status, headers=out)
            response = await request.respond(status=up.status, headers=out)
            async for chunk in up.content.iter_any():
                await response.send(chunk)
            await response.eof()
        return None

    return app


def main() -> None:
    """Serve in one process until SIGTERM."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--rate", type=float, default=1e9, help="requests/s per key (bucket size too)")
    args = ap.parse_args()
    key_sha256 = bytes.fromhex(os.environ["BENCH_RELAY_KEY_SHA256"])
    app = create_app(args.upstream, key_sha256, args.rate)
    app.run(host="127.0.0.1", port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
