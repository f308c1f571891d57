"""The block list: every spelling of every model-changing endpoint is 403, and never relayed."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.fake_ollama.runner import FakeOllama
from tests.routes.conftest import Stack, relayed

BLOCKED = [
    "/api/pull",
    "/api/push",
    "/api/create",
    "/api/copy",
    "/api/delete",
    "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def _encode_first(path: str) -> str:
    """/api/pull -> /api/%70ull: the first letter after /api/ percent-encoded."""
    head, rest = path[:5], path[5:]
    return f"{head}%{ord(rest[0]):02X}{rest[1:]}"


SPELLINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda p: p,
    "upper": str.upper,
    "mixed case": lambda p: p[:5] + p[5:].capitalize(),
    "double slashes": lambda p: p.replace("/", "//"),
    "trailing slash": lambda p: p + "/",
    "%2F": lambda p: "/api%2F" + p[5:],
    "%2f lower + %61": lambda p: "/%61pi%2f" + p[5:],
    "%70-style letter": _encode_first,
    "double-encoded": lambda p: "/api%252F" + p[5:],
    "dot segment": lambda p: "/api/./" + p[5:],
    "dot-dot": lambda p: "/api/tags/../" + p[5:],
    "encoded dot-dot": lambda p: "/v1/%2e%2e/api/" + p[5:],
    "query string": lambda p: p + "?stream=false",
    "backslash": lambda p: "/api\\" + p[5:],
}


def status_of(base: str, method: str, path: str, key: str | None) -> int:
    """Send the exact request line (no client-side normalisation) and read the status."""
    parts = urlsplit(base)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}"
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("path", BLOCKED, ids=lambda p: p[:16])
def test_blocked_in_every_spelling_and_method(
    stack: Stack, fake: FakeOllama, path: str, spelling: str
) -> None:
    raw = SPELLINGS[spelling](path)
    wrong = [
        (method, bool(key), status)
        for method in METHODS
        for key in (None, stack.key)
        if (status := status_of(stack.url, method, raw, key)) != 403
    ]
    assert wrong == [], raw
    assert relayed(fake) == []


def test_the_fake_would_have_answered(stack: Stack, fake: FakeOllama) -> None:
    """The endpoints exist upstream: only the gateway stops them."""
    assert status_of(stack.fake.url, "POST", "/api/copy", None) == 400
