"""Sliding-log rate limit: the classic case, late events, state, and the window invariant."""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.inference.rate_limit import (
    ClientWindow,
    RateDecision,
    SlidingWindowLimiter,
    is_idle,
    rate_limit,
)

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True)
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_classic_case() -> None:
    limiter = SlidingWindowLimiter(max_requests=5, window_seconds=60)
    seen = [limiter.check("c1", T0 + i) for i in range(5)]
    assert seen == [RateDecision(True, r, 0.0) for r in (4, 3, 2, 1, 0)]
    assert limiter.check("c1", T0 + 5) == RateDecision(False, 0, 55.0)
    assert limiter.check("c1", T0 + 65) == RateDecision(True, 4, 0.0)


def test_same_instant_burst_lets_exactly_the_limit_through() -> None:
    limiter = SlidingWindowLimiter(max_requests=60, window_seconds=60)
    decisions = [limiter.check("c1", T0) for _ in range(100)]
    assert sum(d.allowed for d in decisions) == 60
    assert [d.remaining for d in decisions[:60]] == list(range(59, -1, -1))
    assert all(d == RateDecision(False, 0, 60.0) for d in decisions[60:])


def test_window_is_half_open() -> None:
    limiter = SlidingWindowLimiter(max_requests=1, window_seconds=10)
    assert limiter.check("c1", 100.0).allowed
    assert limiter.check("c1", 109.999) == RateDecision(False, 0, pytest.approx(0.001))
    assert limiter.check("c1", 110.0).allowed


def test_clients_are_independent() -> None:
    limiter = SlidingWindowLimiter(max_requests=1, window_seconds=10)
    assert limiter.check("a", 1.0).allowed
    assert limiter.check("b", 1.0).allowed
    assert not limiter.check("a", 2.0).allowed
    assert len(limiter) == 2


def test_a_refused_request_is_not_recorded() -> None:
    state = ClientWindow((1.0, 2.0))
    decision, new_state = rate_limit(state, 3.0, max_requests=2, window_seconds=10)
    assert not decision.allowed
    assert new_state is state


def test_state_stays_bounded_by_the_limit() -> None:
    state: ClientWindow | None = None
    for i in range(1_000):
        _, state = rate_limit(state, T0 + i * 0.5, max_requests=7, window_seconds=3)
        assert len(state.timestamps) <= 7
    assert state is not None
    assert state.timestamps == tuple(T0 + i * 0.5 for i in range(993, 1_000))


def test_a_lowered_limit_trims_an_old_state() -> None:
    state = ClientWindow(tuple(float(t) for t in range(10)))
    decision, new_state = rate_limit(state, 100.0, max_requests=3, window_seconds=10)
    assert decision == RateDecision(True, 2, 0.0)
    assert new_state == ClientWindow((8.0, 9.0, 100.0), horizon=7.0)


@pytest.mark.parametrize(
    ("allowed_first", "late", "expected"),
    [
        # Outside every window of the newer requests: judged on its own, allowed.
        ([20.0], 5.0, RateDecision(True, 1, 0.0)),
        # Its own window (6, 16] is empty, but (11, 21] would hold 16, 20 and 21. A retry
        # is allowed once 20 has left the window: at 30, 14 s after 16.
        ([20.0, 21.0], 16.0, RateDecision(False, 0, 14.0)),
        # (2, 12] is empty and (10, 20] has room, but (11, 21] would hold three.
        ([20.0, 21.0], 12.0, RateDecision(False, 0, 18.0)),
        # Fits beside one request: the busiest window containing it then holds two.
        ([20.0], 15.0, RateDecision(True, 0, 0.0)),
        # 0 and 5 were forgotten (horizon 5): 12 could share a window with 5, refused.
        # The window ending at the newest request (40) has room: a retry at 40 is allowed.
        ([0.0, 5.0, 30.0, 40.0], 12.0, RateDecision(False, 0, 28.0)),
        # 16 is a full window after the horizon: judged exactly, allowed.
        ([0.0, 5.0, 30.0, 40.0], 16.0, RateDecision(True, 1, 0.0)),
    ],
)
def test_late_requests(allowed_first: list[float], late: float, expected: RateDecision) -> None:
    limiter = SlidingWindowLimiter(max_requests=2, window_seconds=10)
    for t in allowed_first:
        assert limiter.check("c1", t).allowed
    assert limiter.check("c1", late) == expected


def test_horizon_records_what_the_bounded_state_forgot() -> None:
    state: ClientWindow | None = None
    for t in (0.0, 5.0, 30.0, 40.0):
        _, state = rate_limit(state, t, max_requests=2, window_seconds=10)
    assert state == ClientWindow((30.0, 40.0), horizon=5.0)


def test_evict_idle_drops_clients_with_nothing_in_the_window() -> None:
    limiter = SlidingWindowLimiter(max_requests=3, window_seconds=60)
    limiter.check("old", 0.0)
    limiter.check("edge", 40.0)
    limiter.check("fresh", 90.0)
    assert limiter.evict_idle(100.0) == 2
    assert limiter.state("old") is None and limiter.state("edge") is None
    assert limiter.state("fresh") == ClientWindow((90.0,))


@pytest.mark.parametrize(
    ("state", "now", "idle"),
    [(None, 0.0, True), (ClientWindow(), 0.0, True), (ClientWindow((10.0,)), 69.9, False)],
)
def test_is_idle(state: ClientWindow | None, now: float, idle: bool) -> None:
    assert is_idle(state, now, 60.0) is idle


def test_limiter_uses_the_given_store() -> None:
    store: dict[str, ClientWindow] = {}
    limiter = SlidingWindowLimiter(2, 10, store=store)
    limiter.check("c1", 1.0)
    assert store == {"c1": ClientWindow((1.0,))}


@pytest.mark.parametrize(
    ("max_requests", "window_seconds", "message"),
    [
        (0, 60, "max_requests must be an integer >= 1, got 0"),
        (-1, 60, "max_requests must be an integer >= 1, got -1"),
        (2.5, 60, "max_requests must be an integer >= 1, got 2.5"),
        (True, 60, "max_requests must be an integer >= 1, got True"),
        (5, True, "window_seconds must be finite and > 0, got True"),
        (5, 0, "window_seconds must be finite and > 0, got 0"),
        (5, -1.0, "window_seconds must be finite and > 0, got -1.0"),
        (5, math.inf, "window_seconds must be finite and > 0, got inf"),
        (5, math.nan, "window_seconds must be finite and > 0, got nan"),
    ],
)
def test_parameters_are_checked(max_requests: Any, window_seconds: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SlidingWindowLimiter(max_requests, window_seconds)
    with pytest.raises(ValueError, match=message):
        rate_limit(None, 0.0, max_requests=max_requests, window_seconds=window_seconds)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_now_must_be_finite(now: float) -> None:
    with pytest.raises(ValueError, match="now must be a finite epoch time"):
        SlidingWindowLimiter(5, 60).check("c1", now)


@pytest.mark.parametrize(
    "window",
    [ClientWindow(), ClientWindow((1.0, 2.5, 2.5)), ClientWindow((7.0,), horizon=3.0)],
)
def test_json_round_trip(window: ClientWindow) -> None:
    assert ClientWindow.from_json(json.loads(json.dumps(window.to_json()))) == window


@pytest.mark.parametrize(
    "data",
    [
        None,
        [1.0, 2.0],
        {"timestamps": "1,2"},
        {"timestamps": [1.0, "2"]},
        {"timestamps": [True]},
        {"timestamps": [math.nan]},
        {"timestamps": [1.0], "horizon": math.inf},
        {"timestamps": [1.0], "horizon": "0"},
    ],
)
def test_from_json_refuses_anything_else(data: Any) -> None:
    with pytest.raises(ValueError):
        ClientWindow.from_json(data)


# -- properties ---------------------------------------------------------------

LIMITS = st.tuples(st.integers(1, 5), st.sampled_from([1.0, 2.5, 10.0]))
# A small time grid makes ties and exact window boundaries common.
TIMES = st.lists(st.integers(0, 80).map(lambda n: n * 0.5), max_size=60)


def _max_in_any_window(allowed: list[float], window: float) -> int:
    stamps = sorted(allowed)
    # The busiest window (b - W, b] can be taken to end at an allowed timestamp.
    return max((i + 1 - bisect_right(stamps, b - window) for i, b in enumerate(stamps)), default=0)


@PROPERTY
@given(LIMITS, TIMES)
def test_never_more_than_n_in_any_window_whatever_the_order(
    limits: tuple[int, float], times: list[float]
) -> None:
    limit, window = limits
    limiter = SlidingWindowLimiter(limit, window)
    allowed = []
    for t in times:
        decision = limiter.check("c1", t)
        assert decision.remaining >= 0 and decision.retry_after_seconds >= 0
        state = limiter.state("c1")
        assert state is not None and len(state.timestamps) <= limit
        if decision.allowed:
            allowed.append(t)
    assert _max_in_any_window(allowed, window) <= limit


@PROPERTY
@given(LIMITS, TIMES)
def test_in_order_streams_are_decided_exactly(
    limits: tuple[int, float], times: list[float]
) -> None:
    limit, window = limits
    limiter = SlidingWindowLimiter(limit, window)
    allowed: list[float] = []
    for t in sorted(times):
        in_window = [a for a in allowed if t - window < a <= t]
        decision = limiter.check("c1", t)
        if len(in_window) < limit:
            assert decision == RateDecision(True, limit - len(in_window) - 1, 0.0)
            allowed.append(t)
        else:
            assert decision == RateDecision(False, 0, in_window[0] + window - t)


@PROPERTY
@given(LIMITS, TIMES)
def test_pure_function_over_a_json_table_matches_the_limiter(
    limits: tuple[int, float], times: list[float]
) -> None:
    limit, window = limits
    limiter = SlidingWindowLimiter(limit, window)
    table: dict[str, str] = {}  # what a Faust table with the json serializer would hold
    for t in times:
        stored = table.get("c1")
        state = ClientWindow.from_json(json.loads(stored)) if stored else None
        decision, new_state = rate_limit(state, t, max_requests=limit, window_seconds=window)
        table["c1"] = json.dumps(new_state.to_json())
        assert decision == limiter.check("c1", t)


# Arbitrary floats far from zero (epoch seconds) make the wait's rounding matter.
FLOAT_TIMES = st.lists(st.floats(0.0, 200.0).map(lambda x: T0 + x), max_size=40)


@PROPERTY
@given(
    st.integers(1, 5),
    st.sampled_from([0.1, 1.0, 2.5, 7.3, 60.0]),
    st.one_of(TIMES, FLOAT_TIMES),
)
def test_a_refusal_gives_a_positive_wait_after_which_a_retry_is_allowed(
    limit: int, window: float, times: list[float]
) -> None:
    state: ClientWindow | None = None
    for t in times:
        decision, new_state = rate_limit(state, t, max_requests=limit, window_seconds=window)
        if not decision.allowed:
            assert decision.retry_after_seconds > 0
            retry_at = t + decision.retry_after_seconds
            retry, _ = rate_limit(state, retry_at, max_requests=limit, window_seconds=window)
            assert retry.allowed, (state, t, decision)
        state = new_state
