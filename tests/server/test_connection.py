"""The connection protocol: non-HTTP bytes refused at once, a dripping client cut off in time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from config import Backend, Settings
from server.app import create_app
from server.http.connection import GatewayProtocol
from tests.inprocess import serving


@pytest.fixture
async def port(settings: Settings) -> AsyncIterator[int]:
    settings = settings.with_(request_timeout=1.0, backends=(Backend("b", "http://127.0.0.1:9"),))
    app = create_app(settings, name=f"gw_{uuid.uuid4().hex[:8]}")
    async with serving(app, protocol=GatewayProtocol) as url:
        yield int(url.rsplit(":", 1)[1])


async def _exchange(port: int, *parts: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send `parts` with pauses while reading; (what came back, seconds until it closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    received = bytearray()

    async def read() -> float:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        except ConnectionError:
            pass
        return time.monotonic() - start

    reading = asyncio.create_task(read())
    try:
        for part in parts:
            if reading.done():
                break
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
    except ConnectionError:
        pass
    took = await asyncio.wait_for(reading, timeout=5)
    writer.close()
    return bytes(received), took


@pytest.mark.parametrize(
    "payload",
    [
        bytes.fromhex("16030100a5010000a10303") + b"\x00" * 40,
        b"\x00" * 100,
        b"BAD\x7fMETHOD / HTTP/1.1\r\n",
    ],
)
async def test_not_http_is_a_400_and_a_close(port: int, payload: bytes) -> None:
    answer, took = await _exchange(port, payload)
    assert answer.startswith(b"HTTP/1.1 400") and took < 1.0


async def test_a_method_split_across_packets_is_still_checked(port: int) -> None:
    answer, _ = await _exchange(port, b"GE", b"\x00T / HTTP/1.1\r\n\r\n", pause=0.05)
    assert answer.startswith(b"HTTP/1.1 400")


async def test_a_client_dripping_its_header_is_cut_off(port: int) -> None:
    drip = [b"GET /healthz HTTP/1.1\r\n"] + [b"x-a: b\r\n"] * 20
    answer, took = await _exchange(port, *drip, pause=0.2)
    assert answer.startswith(b"HTTP/1.1 408") and took < 3.0


async def test_a_client_dripping_its_body_is_cut_off(port: int) -> None:
    head = b"POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n"
    head += b"authorization: Bearer nz_" + b"a" * 48 + b"\r\n\r\n"
    answer, took = await _exchange(port, head, *[b"{" * 10] * 20, pause=0.2)
    assert took < 3.0 and (answer == b"" or answer.split(b" ")[1] in (b"401", b"408"))


async def test_a_normal_request_is_served(port: int) -> None:
    answer, _ = await _exchange(
        port, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200")
