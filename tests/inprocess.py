"""Serve Sanic apps inside the test's own event loop: the gateway's hot path without a subprocess."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sanic import Sanic
from sanic.application.state import ApplicationServerInfo

from tests.gateway import free_port


@asynccontextmanager
async def serving(app: Sanic[Any, Any], protocol: type[Any] | None = None) -> AsyncIterator[str]:
    """Run `app` on a free loopback port in this loop (listeners included); yield its URL."""
    Sanic.test_mode = True
    port = free_port()
    info = {"version": "1.1", "ssl": None, "unix": None, "sock": None, "loop": None}
    app.state.server_info.append(
        ApplicationServerInfo(settings={**info, "host": "127.0.0.1", "port": port})
    )
    app.router.reset()
    app.signal_router.reset()
    await app._startup()
    loop = asyncio.get_running_loop()
    await app._server_event("init", "before", loop=loop)
    server = await app.create_server(
        host="127.0.0.1",
        port=port,
        return_asyncio_server=True,
        access_log=False,
        **({"protocol": protocol} if protocol else {}),
    )
    assert server is not None
    await server.startup()
    await app._server_event("init", "after", loop=loop)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await app._server_event("shutdown", "before", loop=loop)
        server.close()
        await server.wait_closed()
        await app._server_event("shutdown", "after", loop=loop)


async def audit_events(app: Sanic[Any, Any], at_least: int = 1, timeout: float = 5.0) -> list[Any]:
    """The audit events written so far, oldest first, once at least `at_least` are there.

    A client may stop reading before the gateway closed its request (an SSE stream without
    [DONE]); flushing alone could run before that request's event was queued.
    """
    from models import AuditEvent

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await app.ctx.worker.flush_audit()
        events = await AuditEvent.all().order_by("time", "id")
        if len(events) >= at_least or asyncio.get_running_loop().time() > deadline:
            return list(events)
        await asyncio.sleep(0.05)
