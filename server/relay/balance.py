"""Routing arithmetic: priority tiers, and the least-loaded backend of a tier for its weight."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.relay.backends import BackendState

EPSILON = 1e-9


def tiers(
    live: Sequence[BackendState], model: str | None, skip: Collection[str] = ()
) -> list[list[BackendState]]:
    """The candidates for a model, by tier (lower group first), minus those already tried.

    Backends that list the model are the only candidates when any live one does; otherwise
    every live backend is (it answers "model not found" itself, or has just pulled it).
    """
    having = [s for s in live if model is not None and s.has(model)]
    pool = [s for s in (having or live) if s.name not in skip]
    groups = sorted({s.tier for s in pool})
    return [[s for s in pool if s.tier == g] for g in groups]


def load(state: BackendState) -> float:
    """Requests in flight relative to the backend's weight."""
    return state.in_flight / state.backend.weight


def is_full(state: BackendState) -> bool:
    """Whether this worker alone already holds the backend's max_concurrent."""
    cap = state.backend.max_concurrent
    return cap is not None and state.in_flight >= cap


def choose(
    tier: Sequence[BackendState], full: Collection[str] = (), *, caps: bool = True
) -> BackendState | None:
    """The backend of a tier with the fewest requests in flight relative to its weight.

    Backends named in `full` (and, with `caps`, those at their max_concurrent) are skipped;
    None when none is left. Ties (idle backends, equal loads) go by smooth weighted round
    robin, so even one request at a time is spread in proportion to the weights.
    """
    open_ = [s for s in tier if s.name not in full and not (caps and is_full(s))]
    if not open_:
        return None
    low = min(load(s) for s in open_)
    tied = [s for s in open_ if load(s) - low <= EPSILON]
    if len(tied) == 1:
        return tied[0]
    for s in tied:
        s.credit += s.backend.weight
    best = max(tied, key=lambda s: s.credit)
    best.credit -= sum(s.backend.weight for s in tied)
    return best
