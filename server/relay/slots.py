"""Counted slots on backends: one per request in flight, capped, waited for in order, always freed.

A request that runs a model takes a slot on the backend chosen for it and gives it back on every
way out (answer, upstream error, client gone, cancellation). When every candidate is at its
max_concurrent the request waits up to BACKEND_QUEUE_TIMEOUT: a slot freed in this worker is
handed to the first waiter that can use it (FIFO); with Redis, the first waiter of a backend also
polls for slots other workers and replicas free. Then 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from server.errors import GatewayError, Unavailable
from server.relay.balance import choose
from server.relay.shared import SharedSlots

if TYPE_CHECKING:
    from limits import AnyRedis
    from server.relay.backends import BackendRegistry, BackendState

POLL_INTERVAL = 0.1  # seconds between a waiter's looks at the shared leases
PUBLISH_DELAY = 0.25  # seconds: in-flight snapshots trail changes by at most this
RETRY_AFTER = {"Retry-After": "1"}

Tiers = list[list["BackendState"]]


class BackendsFull(Unavailable):
    """Every backend that could serve the request is at its max_concurrent."""

    code = "backends_full"


@dataclass(eq=False)
class Slot:
    """One request's place on a backend; `release()` is idempotent."""

    owner: Slots
    state: BackendState
    lease: str | None = None  # the shared lease id, when the backend is capped and Redis is used
    counted: bool = True
    released: bool = False

    def release(self) -> None:
        """Give the place back (to the first waiter that can use it, if any)."""
        self.owner.release(self)


@dataclass(eq=False)
class _Waiter:
    wants: frozenset[str]
    future: asyncio.Future[Slot]


@dataclass
class Slots:
    """This worker's slots on every backend, its waiters, and (with Redis) the shared leases."""

    registry: BackendRegistry
    queue_timeout: float
    namespace: str
    lease_ttl: float
    worker: str = field(default_factory=lambda: uuid.uuid4().hex)
    shared: SharedSlots | None = None
    held: dict[str, set[str]] = field(default_factory=dict)  # backend -> shared leases held
    _queue: deque[_Waiter] = field(default_factory=deque)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _publishing: bool = False

    def share(self, redis: AnyRedis | None) -> None:
        """Use this Redis for caps and snapshots from now on (the worker's one client)."""
        if redis is not None and self.shared is None:
            self.shared = SharedSlots(redis, self.namespace, self.lease_ttl, self.worker)

    def counts(self) -> dict[str, int]:
        """Requests in flight per backend, in this worker."""
        return {s.name: s.in_flight for s in self.registry.states}

    async def first_free(self, tiers: Tiers) -> Slot | None:
        """A slot on the least-loaded open backend of the best tier that has one, or None."""
        for tier in tiers:
            full: set[str] = set()
            while (state := choose(tier, full)) is not None:
                slot = await self._take(state)
                if slot is not None:
                    return slot
                full.add(state.name)
        return None

    async def _take(self, state: BackendState) -> Slot | None:
        state.in_flight += 1  # counted before Redis answers, so a burst spreads meanwhile
        cap, shared = state.backend.max_concurrent, self.shared
        if cap is None or shared is None:
            self._changed()
            return Slot(self, state)
        lease = uuid.uuid4().hex
        try:
            taken = await shared.take(state.name, lease, cap)
        except BaseException:
            state.in_flight -= 1
            self._later(shared.release(state.name, lease))  # in case it was taken before
            raise
        if not taken:
            state.in_flight -= 1
            return None
        self.held.setdefault(state.name, set()).add(lease)
        self._changed()
        return Slot(self, state, lease)

    def release(self, slot: Slot) -> None:
        """Hand the slot to the first waiter that wants its backend, else free it."""
        if slot.released:
            return
        slot.released = True
        if not slot.counted:
            return
        state = slot.state
        if self.registry.in_service(state):
            for waiter in self._queue:
                if state.name in waiter.wants and not waiter.future.done():
                    self._queue.remove(waiter)
                    waiter.future.set_result(Slot(self, state, slot.lease))
                    return
        state.in_flight -= 1
        if slot.lease is not None and self.shared is not None:
            self.held.get(state.name, set()).discard(slot.lease)
            self._later(self.shared.release(state.name, slot.lease))
        self._changed()

    async def wait(
        self, wants: frozenset[str], tiers: Callable[[], Tiers], model: str | None
    ) -> Slot:
        """Wait for a slot on one of `wants` until the queue timeout; else BackendsFull."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue_timeout
        waiter = _Waiter(wants, loop.create_future())
        got: Slot | None = None
        self._queue.append(waiter)
        try:
            while (remaining := deadline - loop.time()) > 0:
                step = remaining if self.shared is None else min(remaining, POLL_INTERVAL)
                await asyncio.wait({waiter.future}, timeout=step)
                if waiter.future.done():
                    got = waiter.future.result()
                    return got
                if self.shared is not None and self._first_for(waiter):
                    got = await self.first_free(tiers())
                    if got is not None:
                        return got
            raise _full(model)
        finally:
            if waiter in self._queue:
                self._queue.remove(waiter)
            if waiter.future.done():
                handed = waiter.future.result()
                if handed is not got:
                    handed.release()  # handed over while this waiter left another way
            else:
                waiter.future.cancel()

    def _first_for(self, waiter: _Waiter) -> bool:
        """Whether no earlier waiter wants any of this waiter's backends (it may poll)."""
        for other in self._queue:
            if other is waiter:
                return True
            if other.wants & waiter.wants:
                return False
        return False

    def _changed(self) -> None:
        if self.shared is None or self._publishing:
            return
        self._publishing = True
        self._later(self._publish_soon(self.shared))

    async def _publish_soon(self, shared: SharedSlots) -> None:
        try:
            await asyncio.sleep(PUBLISH_DELAY)
        finally:
            self._publishing = False
        await shared.publish(self.counts())

    async def heartbeat(self) -> None:
        """Renew held leases and republish the counts (the registry's loop calls this)."""
        if self.shared is not None:
            await self.shared.heartbeat(self.held, self.counts())

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(_logged(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Finish pending releases and withdraw this worker's snapshot."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.shared is not None:
            await _logged(self.shared.forget())


def _full(model: str | None) -> GatewayError:
    what = f"model '{model}'" if model else "this request"
    return BackendsFull(
        f"every backend for {what} is at its max_concurrent; retry shortly", headers=RETRY_AFTER
    )


async def _logged(coro: Coroutine[Any, Any, None]) -> None:
    """Run a background Redis write; a failure is logged (leases expire on their own)."""
    try:
        await coro
    except Exception as exc:  # noqa: BLE001 - background: nothing to answer
        logger.warning("shared backend state not written: {}", type(exc).__name__)


@dataclass
class Router:
    """One request's way through the candidates: tried backends, the last failure, its slot."""

    slots: Slots
    model: str | None
    counted: bool = True
    skip: set[str] = field(default_factory=set)
    last: GatewayError | None = None

    def tiers(self) -> Tiers:
        """The candidates not tried yet, by tier."""
        return self.slots.registry.tiers(self.model, self.skip)

    async def take(self) -> Slot:
        """A slot on the best candidate; raises the last failure, or 503 when all are full."""
        tiers = self.tiers()
        if not tiers:
            raise self.last or Unavailable("no Ollama backend is available right now")
        if not self.counted:  # not a model run: the least-loaded of the best tier, no cap
            state = choose(tiers[0], caps=False)
            assert state is not None  # a tier is never empty
            return Slot(self.slots, state, counted=False)
        slot = await self.slots.first_free(tiers)
        if slot is not None:
            return slot
        if self.slots.queue_timeout <= 0:
            raise _full(self.model)
        wants = frozenset(s.name for tier in tiers for s in tier)
        return await self.slots.wait(wants, self.tiers, self.model)

    def failed(self, state: BackendState, exc: GatewayError) -> None:
        """The backend refused before any byte went out: try the others."""
        self.skip.add(state.name)
        self.last = exc
