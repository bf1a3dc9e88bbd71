"""Sliding-log rate limit per client: at most N allowed requests in any W seconds.

One implementation, two ways to hold the state:

* :func:`rate_limit` is pure: ``(ClientWindow | None, now) -> (RateDecision, ClientWindow)``.
  An agent keeps one :class:`ClientWindow` per client_id in a table (``to_json`` /
  ``from_json`` give a plain JSON value for the changelog).
* :class:`SlidingWindowLimiter` keeps the windows in a dict-like and calls the same code.

Time is passed in, in epoch seconds: the intake agent passes the time each request
reached the broker (stream_app.inference.intake.Arrived), a clock no client sets. A
window is the half-open interval ``(t - W, t]``: a request exactly W seconds older than
``t`` no longer counts.

Rule for out-of-order (replayed, late) timestamps: a request is allowed only if every
window of W seconds that contains it, earlier or later, still holds fewer than N allowed
requests; so the allowed set never has more than N in any window, whatever the arrival
order. Judging a late request only against the window ending at it is not enough: N
requests just after it would then share a window with it. The state keeps the newest N
allowed timestamps and ``horizon``, the newest timestamp it had to forget; a late request
within W of the horizon could share a window with forgotten requests, so it is refused
(the safe answer).

Rule for ``retry_after_seconds`` of a refusal: it is always > 0, and a request of the same
client at event time ``now + retry_after_seconds`` is allowed, provided nothing else of
that client is allowed in between. It is the wait until the earliest such time at or
after the newest allowed timestamp: for an in-order request, until the oldest timestamp
of its window leaves the window (``oldest + W - now``, DESIGN.md); for a late one, until
the newest allowed timestamp if the window ending there has room, else until the oldest
timestamp of that window leaves it. (A late request might fit earlier, between the
kept timestamps; the wait does not promise the shortest possible time, only a time
that works.) Float rounding is accounted for: ``now + wait`` is checked, not assumed.

Eviction forgets: :meth:`SlidingWindowLimiter.evict_idle` (and an agent that deletes
idle clients from its table) drops a client's whole state, horizon included. A request
replayed after that with a timestamp older than the eviction point is judged afresh
against an empty window, so it can be allowed although the full history would have
refused it. Evict only behind the event time you will not replay (e.g. the committed
offset's timestamp minus W), or accept that a replay past an eviction is not exact.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ClientWindow",
    "RateDecision",
    "SlidingWindowLimiter",
    "is_idle",
    "rate_limit",
]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request.

    ``remaining``: how many more requests the busiest window containing this one still
    takes (0 when refused). ``retry_after_seconds``: 0 when allowed; when refused, > 0
    and a retry at ``now + retry_after_seconds`` is allowed (module docstring).
    """

    allowed: bool
    remaining: int
    retry_after_seconds: float


@dataclass(frozen=True, slots=True)
class ClientWindow:
    """One client's state: the newest allowed timestamps, sorted, at most N of them.

    ``horizon`` is the newest timestamp dropped to keep that bound (-inf if none).
    """

    timestamps: tuple[float, ...] = ()
    horizon: float = -math.inf

    @property
    def newest(self) -> float:
        """The newest allowed timestamp, or -inf for an empty window."""
        return self.timestamps[-1] if self.timestamps else -math.inf

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready value (for a Faust table with the json serializer).

        Example:
            >>> ClientWindow((1.0, 2.5)).to_json()
            {'timestamps': [1.0, 2.5], 'horizon': None}
        """
        horizon = None if math.isinf(self.horizon) else self.horizon
        return {"timestamps": list(self.timestamps), "horizon": horizon}

    @classmethod
    def from_json(cls, data: Any) -> ClientWindow:
        """Rebuild a window from :meth:`to_json` output; ValueError on anything else.

        Example:
            >>> ClientWindow.from_json({"timestamps": [2.5, 1], "horizon": None})
            ClientWindow(timestamps=(1.0, 2.5), horizon=-inf)
        """
        if not isinstance(data, dict) or not isinstance(data.get("timestamps"), list):
            raise ValueError("a ClientWindow is a dict with a 'timestamps' list")
        stamps = tuple(sorted(_finite(v, "timestamp") for v in data["timestamps"]))
        raw_horizon = data.get("horizon")
        horizon = -math.inf if raw_horizon is None else _finite(raw_horizon, "horizon")
        return cls(stamps, horizon)


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    return float(value)


def _check_limits(max_requests: int, window_seconds: float) -> None:
    if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
        raise ValueError(f"max_requests must be an integer >= 1, got {max_requests!r}")
    if isinstance(window_seconds, bool) or not (
        isinstance(window_seconds, int | float) and 0 < window_seconds < math.inf
    ):
        raise ValueError(f"window_seconds must be finite and > 0, got {window_seconds!r}")


def rate_limit(
    state: ClientWindow | None,
    now: float,
    *,
    max_requests: int,
    window_seconds: float,
) -> tuple[RateDecision, ClientWindow]:
    """Decide one request at event time ``now`` and return the client's new state.

    A refused request is not recorded (the state comes back unchanged).

    Example:
        >>> state = None
        >>> for t in (0, 1, 2):
        ...     decision, state = rate_limit(state, t, max_requests=2, window_seconds=60)
        ...     print(decision.allowed, decision.remaining, decision.retry_after_seconds)
        True 1 0.0
        True 0 0.0
        False 0 58.0
    """
    _check_limits(max_requests, window_seconds)
    return _decide(state or _EMPTY, now, max_requests, float(window_seconds))


_EMPTY = ClientWindow()
# Allowed decisions differ only in `remaining`: share one immutable instance per value.
_ALLOWED: dict[int, RateDecision] = {}


def _allowed(remaining: int) -> RateDecision:
    decision = _ALLOWED.get(remaining)
    if decision is None:
        decision = RateDecision(True, remaining, 0.0)
        if len(_ALLOWED) < 4096:
            _ALLOWED[remaining] = decision
    return decision


def _decide(
    state: ClientWindow, now: float, limit: int, window: float
) -> tuple[RateDecision, ClientWindow]:
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite epoch time in seconds, got {now!r}")
    stamps = state.timestamps
    if len(stamps) > limit:
        # The limit was lowered since this state was written: keep the newest `limit`.
        state = ClientWindow(stamps[-limit:], max(state.horizon, stamps[-limit - 1]))
        stamps = state.timestamps
    if not stamps or now >= stamps[-1]:
        return _decide_in_order(state, now, limit, window)
    return _decide_late(state, now, limit, window)


def _decide_in_order(
    state: ClientWindow, now: float, limit: int, window: float
) -> tuple[RateDecision, ClientWindow]:
    """``now`` is at or after every kept timestamp: only the window ending at now matters.

    The horizon never matters here: it is at least W older than the newest timestamp.
    """
    stamps = state.timestamps
    first = bisect_right(stamps, now - window)
    in_window = len(stamps) - first
    if in_window >= limit:
        wait = _wait_until(now, _leaves_window_at(stamps[first], window))
        return RateDecision(False, 0, wait), state
    kept = (*stamps, float(now))
    horizon = state.horizon
    if len(kept) > limit:
        # Dropped timestamps are outside the window ending at now (at most limit - 1 are in).
        horizon = max(horizon, kept[-limit - 1])
        kept = kept[-limit:]
    return _allowed(limit - in_window - 1), ClientWindow(kept, horizon)


def _decide_late(
    state: ClientWindow, now: float, limit: int, window: float
) -> tuple[RateDecision, ClientWindow]:
    """``now`` is older than the newest kept timestamp: check every window containing it."""
    stamps = state.timestamps
    busiest = limit if now < state.horizon + window else _busiest_window(stamps, now, window)
    if busiest >= limit:
        # A retry is judged in order once it is at or after the newest timestamp.
        newest = stamps[-1]
        first = bisect_right(stamps, newest - window)
        if len(stamps) - first >= limit:
            newest = _leaves_window_at(stamps[first], window)
        return RateDecision(False, 0, _wait_until(now, newest)), state
    kept = list(stamps)
    insort(kept, float(now))
    horizon = state.horizon
    if len(kept) > limit:
        horizon = max(horizon, kept.pop(0))
    return _allowed(limit - busiest - 1), ClientWindow(tuple(kept), horizon)


def _leaves_window_at(oldest: float, window: float) -> float:
    """The first time t whose window ``(t - W, t]``, computed in floats, excludes ``oldest``.

    ``oldest + W`` rounded to a float can land one step short; a retry at that time
    would then be refused again.
    """
    t = oldest + window
    while t - window < oldest:
        t = math.nextafter(t, math.inf)
    return t


def _wait_until(now: float, target: float) -> float:
    """The wait w > 0 with ``now + w >= target`` in floats (``target`` is after ``now``)."""
    wait = target - now
    while now + wait < target:
        wait = math.nextafter(wait, math.inf)
    return wait


def _busiest_window(stamps: Sequence[float], t: float, window: float) -> int:
    """Most kept timestamps in one window ``(b - W, b]`` that also contains ``t``.

    Such windows end at some b in [t, t + W); the count only grows at a kept timestamp,
    so it is enough to look at b = t and at every kept timestamp in (t, t + W).
    """
    best = bisect_right(stamps, t) - bisect_right(stamps, t - window)
    for i in range(bisect_right(stamps, t), bisect_left(stamps, t + window)):
        b = stamps[i]
        best = max(best, i + 1 - bisect_right(stamps, b - window))
    return best


def is_idle(state: ClientWindow | None, now: float, window_seconds: float) -> bool:
    """Whether a client's state can be dropped: nothing allowed in the window ending at now.

    Example:
        >>> is_idle(ClientWindow((10.0,)), 70.0, 60.0), is_idle(ClientWindow((10.0,)), 69.0, 60.0)
        (True, False)
    """
    return state is None or state.newest <= now - window_seconds


class SlidingWindowLimiter:
    """In-memory limiter: one :class:`ClientWindow` per client in a dict-like store.

    Example:
        >>> limiter = SlidingWindowLimiter(max_requests=1, window_seconds=10)
        >>> limiter.check("c1", 100.0).allowed, limiter.check("c1", 105.0)
        (True, RateDecision(allowed=False, remaining=0, retry_after_seconds=5.0))
    """

    def __init__(
        self,
        max_requests: int,
        window_seconds: float,
        *,
        store: MutableMapping[str, ClientWindow] | None = None,
    ) -> None:
        _check_limits(max_requests, window_seconds)
        self.max_requests = max_requests
        self.window_seconds = float(window_seconds)
        self._clients: MutableMapping[str, ClientWindow] = {} if store is None else store

    def check(self, client_id: str, now: float) -> RateDecision:
        """Decide one request of ``client_id`` at event time ``now`` and record it if allowed."""
        state = self._clients.get(client_id, _EMPTY)
        decision, new_state = _decide(state, now, self.max_requests, self.window_seconds)
        if new_state is not state:
            self._clients[client_id] = new_state
        return decision

    def state(self, client_id: str) -> ClientWindow | None:
        """The stored window of one client, if any."""
        return self._clients.get(client_id)

    def evict_idle(self, now: float) -> int:
        """Drop every client with nothing allowed in the window ending at ``now``.

        Returns how many were dropped. Eviction forgets the client's history: a request
        replayed afterwards with a timestamp older than ``now`` is judged afresh against
        an empty window (see the module docstring).
        """
        idle = [c for c, s in self._clients.items() if is_idle(s, now, self.window_seconds)]
        for client_id in idle:
            del self._clients[client_id]
        return len(idle)

    def __len__(self) -> int:
        return len(self._clients)
