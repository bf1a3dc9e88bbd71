"""The fold contract: every stateful step of the pipeline is one pure function.

``fold(state, events, now) -> Folded(state, results)`` takes the stored state of one key
(None when the key has none yet), that key's events of one batch in the order they were
read, and the batch's clock; it returns the new state (None: forget the key) and what
was decided, one result per event or fewer. It does no I/O and reads no clock: the
agent driver (agents/driver.py) reads each key's state once per batch, calls the fold,
sends what the results turn into, waits for the broker's acknowledgements and only then
writes the state. That order is what makes a crash repeat an output rather than lose
one, and the same code serve replays, tests and rebalances.

:func:`fold_each` builds a fold from a per-event step, which is what most steps are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["Fold", "Folded", "fold_each"]

S = TypeVar("S")
E = TypeVar("E")
R = TypeVar("R")
E_contra = TypeVar("E_contra", contravariant=True)


@dataclass(frozen=True)
class Folded(Generic[S, R]):
    """A fold's answer: the key's new state (None: delete it) and its results."""

    state: S | None
    results: tuple[R, ...] = ()


class Fold(Protocol[S, E_contra, R]):
    """``(state, events, now) -> Folded``: one key's batch of events folded into its state."""

    def __call__(self, state: S | None, events: Sequence[E_contra], now: float) -> Folded[S, R]:
        """Fold ``events`` (one key's, in order) into ``state`` at the clock ``now``."""
        ...


def fold_each(
    step: Callable[[S | None, E, float], tuple[S | None, Sequence[R]]],
) -> Fold[S, E, R]:
    """A fold that applies ``step(state, event, now)`` to each event in turn.

    Example:
        >>> def count(state, event, now):
        ...     total = (state or 0) + event
        ...     return total, [total] if total > 3 else []
        >>> fold_each(count)(None, [1, 2, 3], now=0.0)
        Folded(state=6, results=(6,))
        >>> fold_each(count)(10, [], now=0.0)
        Folded(state=10, results=())
    """

    def fold(state: S | None, events: Sequence[E], now: float) -> Folded[S, R]:
        results: list[R] = []
        for event in events:
            state, out = step(state, event, now)
            results.extend(out)
        return Folded(state, tuple(results))

    return fold
