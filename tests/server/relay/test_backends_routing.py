"""Routing arithmetic in one worker: tiers, least loaded for its weight, caps, the FIFO queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from config import Backend, Settings
from server.relay.backends import BackendRegistry
from server.relay.slots import BackendsFull, Slot
from server.relay.upstream import BackendBusy

MODEL = "llama3.2"
Build = Callable[..., BackendRegistry]


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError("routing tests never send")


@pytest.fixture
async def build() -> AsyncIterator[Callable[..., BackendRegistry]]:
    """Registries whose backends all list MODEL (or the models given), closed at the end."""
    made: list[BackendRegistry] = []

    def make(
        *backends: Backend, queue_timeout: float = 0.0, models: dict[str, set[str]] | None = None
    ) -> BackendRegistry:
        settings = Settings(backends=backends, backend_queue_timeout=queue_timeout)
        registry = BackendRegistry.build(settings, httpx.MockTransport(_refuse))
        for state in registry.states:
            names = (models or {}).get(state.name, {MODEL})
            registry.note_models(state, sorted(names))
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.aclose()


async def _hold(registry: BackendRegistry, n: int, model: str = MODEL) -> list[Slot]:
    return [await registry.router(model).take() for _ in range(n)]


def _split(slots: list[Slot]) -> Counter[str]:
    return Counter(s.state.name for s in slots)


async def test_equal_weights_in_one_group_share_requests_in_flight_evenly(build: Build) -> None:
    registry = build(Backend("a", "http://a", group=0), Backend("b", "http://b", group=0))
    held = await _hold(registry, 100)
    assert _split(held) == {"a": 50, "b": 50}
    assert [s.in_flight for s in registry.states] == [50, 50]
    for slot in held[:30]:
        slot.release()
    fresh = await _hold(registry, 30)  # refills whichever side was freed more
    assert [s.in_flight for s in registry.states] == [50, 50]
    for slot in held[30:] + fresh:
        slot.release()
    assert [s.in_flight for s in registry.states] == [0, 0]


async def test_weights_three_to_one_hold_in_flight_and_one_at_a_time(build: Build) -> None:
    registry = build(
        Backend("big", "http://a", weight=3, group=0), Backend("small", "http://b", group=0)
    )
    held = await _hold(registry, 100)
    assert _split(held) == {"big": 75, "small": 25}
    for slot in held:
        slot.release()
    one_at_a_time: Counter[str] = Counter()
    for _ in range(100):  # never two in flight: the tie-break alone spreads them 3:1
        slot = await registry.router(MODEL).take()
        one_at_a_time[slot.state.name] += 1
        slot.release()
    assert one_at_a_time == {"big": 75, "small": 25}


async def test_without_groups_the_list_order_is_strict_priority(build: Build) -> None:
    registry = build(Backend("first", "http://a"), Backend("second", "http://b"))
    assert [s.tier for s in registry.states] == [0, 1]
    assert _split(await _hold(registry, 20)) == {"first": 20}
    registry.mark_down(registry.states[0], "refused")
    assert _split(await _hold(registry, 3)) == {"second": 3}


async def test_a_lower_tier_gets_requests_only_when_the_higher_is_full(build: Build) -> None:
    registry = build(
        Backend("a1", "http://a", group=0, max_concurrent=2),
        Backend("a2", "http://b", group=0, max_concurrent=1),
        Backend("spare", "http://c", group=5),
    )
    held = await _hold(registry, 3)
    assert _split(held) == {"a1": 2, "a2": 1}  # the higher tier, up to its caps
    spill = await _hold(registry, 2)
    assert _split(spill) == {"spare": 2}
    held[0].release()
    assert (await registry.router(MODEL).take()).state.name == held[0].state.name


async def test_a_backend_at_its_max_concurrent_is_skipped(build: Build) -> None:
    registry = build(
        Backend("capped", "http://a", group=0, weight=10, max_concurrent=3),
        Backend("open", "http://b", group=0),
    )
    held = await _hold(registry, 40)
    assert _split(held) == {"capped": 3, "open": 37}


async def test_models_on_some_backends_route_only_there(build: Build) -> None:
    registry = build(
        Backend("general", "http://a", group=0),
        Backend("special", "http://b", group=0, max_concurrent=1),
        models={"general": {MODEL}, "special": {MODEL, "mistral:7b"}},
    )
    first = await registry.router("mistral:7b").take()
    assert first.state.name == "special"
    with pytest.raises(BackendsFull):  # the idle "general" does not have the model
        await registry.router("mistral:7b").take()
    unknown = await _hold(registry, 4, model="nobody-has-this")
    assert _split(unknown) == {"general": 4}  # no backend lists it: any may answer


async def test_all_full_without_a_queue_is_503_with_retry_after(build: Build) -> None:
    registry = build(Backend("only", "http://a", max_concurrent=1))
    await _hold(registry, 1)
    with pytest.raises(BackendsFull) as full:
        await registry.router(MODEL).take()
    assert full.value.status_code == 503 and full.value.headers == {"Retry-After": "1"}
    assert "max_concurrent" in full.value.message and MODEL in full.value.message


async def test_waiters_are_served_in_order_as_slots_free(build: Build) -> None:
    registry = build(Backend("only", "http://a", max_concurrent=1), queue_timeout=5.0)
    (first,) = await _hold(registry, 1)
    served: list[int] = []

    async def wait(i: int) -> Slot:
        slot = await registry.router(MODEL).take()
        served.append(i)
        return slot

    waiters = []
    for i in range(3):
        waiters.append(asyncio.create_task(wait(i)))
        await asyncio.sleep(0.01)  # queued in this order
    assert served == [] and registry.states[0].in_flight == 1
    first.release()
    slot = await waiters[0]
    slot.release()
    (await waiters[1]).release()
    (await waiters[2]).release()
    assert served == [0, 1, 2] and registry.states[0].in_flight == 0


async def test_a_waiter_gives_up_at_the_timeout_and_leaves_nothing_behind(build: Build) -> None:
    registry = build(Backend("only", "http://a", max_concurrent=1), queue_timeout=0.2)
    (held,) = await _hold(registry, 1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(BackendsFull):
        await registry.router(MODEL).take()
    assert asyncio.get_running_loop().time() - started >= 0.19
    cancelled = asyncio.create_task(registry.router(MODEL).take())
    await asyncio.sleep(0.05)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    held.release()
    assert registry.states[0].in_flight == 0 and not registry.slots._queue


async def test_a_slot_handed_to_a_waiter_that_was_cancelled_is_freed(build: Build) -> None:
    registry = build(Backend("only", "http://a", max_concurrent=1), queue_timeout=5.0)
    (held,) = await _hold(registry, 1)
    waiter = asyncio.create_task(registry.router(MODEL).take())
    await asyncio.sleep(0.01)
    held.release()  # handed over to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert registry.states[0].in_flight == 0


async def test_requests_that_run_no_model_take_no_slot(build: Build) -> None:
    registry = build(Backend("only", "http://a", max_concurrent=1))
    await _hold(registry, 1)
    lookup = await registry.router(MODEL, counted=False).take()  # e.g. /api/show on a full box
    assert lookup.state.name == "only" and registry.states[0].in_flight == 1
    lookup.release()
    assert registry.states[0].in_flight == 1


async def test_tried_backends_are_skipped_and_the_last_failure_is_raised(build: Build) -> None:
    registry = build(Backend("a", "http://a", group=0), Backend("b", "http://b", group=0))
    route = registry.router(MODEL)
    seen = []
    for _ in range(2):
        slot = await route.take()
        seen.append(slot.state.name)
        route.failed(slot.state, BackendBusy(f"backend {slot.state.name} is busy"))
        slot.release()
    assert sorted(seen) == ["a", "b"]
    with pytest.raises(BackendBusy):
        await route.take()
    assert all(s.healthy for s in registry.states)  # busy is not down
