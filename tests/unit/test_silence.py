"""Silence closes the app's metric windows: exact windows per tick, replays unaffected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.monitor import BatchSummary, RequestCounted, SilenceTick
from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.monitoring.drift_windows import DriftWindowConfig, DriftWindows, drift_fold
from stream_app.monitoring.event_time import window_start
from stream_app.monitoring.service_windows import (
    MetricsEvent,
    MetricsWindowConfig,
    MetricsWindows,
    WindowMetrics,
    metrics_fold,
)
from stream_app.monitoring.silence import silent_watermark
from stream_app.monitoring.stats import WindowStats
from tests.utils.drift_data import draw, reference_profile

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
C0 = T0.timestamp()  # the partition clock (seconds) when event time is T0
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
CONFIG = MetricsWindowConfig(window=MINUTE, grace=10 * SECOND)
FOLD = metrics_fold(CONFIG)
TICK = SilenceTick()

# (clock in seconds after C0, the event folded alone at that clock)
Timeline = Sequence[tuple[float, MetricsEvent]]


def _rejected(at: datetime) -> RequestCounted:
    return RequestCounted(kind="rejected", timestamp=at)


def _play(
    timeline: Timeline, state: MetricsWindows | None = None
) -> tuple[list[tuple[float, WindowMetrics]], MetricsWindows | None]:
    """Fold each event as its own batch at its clock; (clock, window) per window closed."""
    out = []
    for clock, event in timeline:
        folded = FOLD(state, [event], C0 + clock)
        state = folded.state
        out += [(clock, window) for window in folded.results]
    return out, state


def _ticks(first: float, last: float, every: float = 10.0) -> list[tuple[float, MetricsEvent]]:
    return [(float(t), TICK) for t in np.arange(first, last + every / 2, every)]


@pytest.mark.parametrize(
    ("heard", "arrived", "now", "expected"),
    [
        (None, None, 500.0, None),  # never heard from: nothing to close
        (T0, None, 500.0, None),
        (T0, 100.0, 169.9, None),  # 69.9 s < a window plus the grace (70 s)
        (T0, 100.0, 170.0, T0 + 70 * SECOND),
        (T0, 100.0, 400.0, T0 + 300 * SECOND),
        # A replay's event time trails the clock by a year: the silence adds to it.
        (T0 - timedelta(days=365), 100.0, 400.0, T0 - timedelta(days=365) + 300 * SECOND),
    ],
)  # fmt: skip
def test_the_watermark_a_silence_stands_for(
    heard: datetime | None, arrived: float | None, now: float, expected: datetime | None
) -> None:
    assert silent_watermark(heard, arrived, now, MINUTE, 10 * SECOND) == expected


def test_traffic_then_silence_closes_the_open_windows_then_one_empty_window_a_minute() -> None:
    seconds = (5, 15, 65, 70, 75, 125)  # event time = arrival, as in production
    traffic = [(float(s), _rejected(T0 + s * SECOND)) for s in seconds]
    out, state = _play([*traffic, *_ticks(135, 320)])
    closed = [(clock, int((w.start - T0).total_seconds()), w.requests) for clock, w in out]
    assert closed == [
        (70, 0, 2),  # by the traffic itself: watermark 70 s = end + grace
        # The last request arrived at 125 s; at the tick of 195 s the input has been
        # silent for 70 s, a window plus the grace: the watermark stands at 195 s and
        # the windows ending by 185 s close as they are.
        (195, 60, 3),
        (195, 120, 1),
        (255, 180, 0),  # one empty window per minute of silence from then on
        (315, 240, 0),
    ]
    assert all(w.late_events == 0 and w.error_rate in (1.0, None) for _, w in out)
    assert state is not None
    assert (state.watermark, state.heard) == (T0 + 315 * SECOND, T0 + 125 * SECOND)
    assert state.arrived == C0 + 125


def test_ticks_while_traffic_flows_change_nothing() -> None:
    traffic = [(float(s), _rejected(T0 + s * SECOND)) for s in range(0, 300, 7)]
    ticks = _ticks(3, 300)
    merged = sorted([*traffic, *ticks], key=lambda item: item[0])
    with_ticks, state_with = _play(merged)
    without, state_without = _play(traffic)
    assert [w for _, w in with_ticks] == [w for _, w in without]
    assert state_with == state_without


def test_a_replay_where_events_keep_arriving_is_unaffected() -> None:
    # A year-old day played fast: an event every 0.5 s of clock, 40 s of event time apart,
    # with a gap of six hours of event time in the middle (a night without traffic).
    past = T0 - timedelta(days=365)
    times = [past + i * 40 * SECOND for i in range(200)]
    times += [past + timedelta(hours=6) + i * 40 * SECOND for i in range(200, 400)]
    replay = [(i * 0.5, _rejected(at)) for i, at in enumerate(times)]
    merged = sorted([*replay, *_ticks(0.25, 200)], key=lambda item: item[0])
    with_ticks, _ = _play(merged)
    without, _ = _play(replay)
    assert [w for _, w in with_ticks] == [w for _, w in without]
    # ...but when the replay is over and the clock runs on, its last windows close too.
    after, state = _play(_ticks(210, 300), _play(merged)[1])
    # The last event arrived at 199.5 s; 70 s later its window and the one before it
    # (its last event 40 s earlier, not yet passed by the grace) close as they are.
    assert [(clock, w.requests) for clock, w in after] == [(270.0, 1), (270.0, 1)]
    assert state is not None and state.watermark == times[-1] + (300 - 199.5) * SECOND


def test_traffic_back_after_a_silence_lands_in_its_own_window_and_is_not_late() -> None:
    before = [(float(s), _rejected(T0 + s * SECOND)) for s in (10, 20, 30)]
    after = [(float(s), _rejected(T0 + s * SECOND)) for s in (301, 302, 330, 365, 400)]
    out, state = _play([*before, *_ticks(40, 300), *after, *_ticks(410, 480)])
    closed = [(clock, int((w.start - T0).total_seconds()), w.requests) for clock, w in out]
    assert closed == [
        (100, 0, 3),  # silent since 30 s: at 100 s the watermark stands at 100 s
        (130, 60, 0),
        (190, 120, 0),
        (250, 180, 0),
        (330, 240, 0),  # by the request of 330 s itself (watermark 330 s = 300 + grace)
        (400, 300, 3),  # by the request of 400 s
        (470, 360, 2),  # silent again since 400 s: closed at the tick 70 s later
    ]
    assert sum(w.late_events for _, w in out) == 0
    assert state is not None and state.heard == T0 + 400 * SECOND


def test_a_request_for_a_window_the_silence_closed_is_counted_late_not_lost() -> None:
    before = [(0.0, _rejected(T0)), *_ticks(10, 140)]
    # Arrives after the silence closed [0, 60) and [60, 120), stamped 90 s (a stale clock).
    out, state = _play([*before, (141.0, _rejected(T0 + 90 * SECOND)), *_ticks(150, 310)])
    assert [(clock, w.start, w.requests, w.late_events) for clock, w in out] == [
        (70, T0, 1, 0),
        (130, T0 + MINUTE, 0, 0),
        # The late one is reported with the next window closed. The silence now counts
        # from its arrival (141 s) and its time (90 s): the watermark is 90 s + the quiet.
        (250, T0 + 2 * MINUTE, 0, 1),
        (310, T0 + 3 * MINUTE, 0, 0),
    ]
    assert state is not None and (state.heard, state.arrived) == (T0 + 90 * SECOND, C0 + 141)


def test_seeded_traffic_with_outages_every_request_in_its_window_none_late() -> None:
    rng = np.random.default_rng(9)
    clock, timeline, stamps = 0.0, [], []
    for _ in range(600):
        # Mostly steady, now and then an outage of 1 to 5 minutes.
        clock += float(rng.exponential(2.0)) if rng.random() > 0.01 else float(rng.uniform(60, 300))
        lag = float(rng.uniform(0, 9.9))  # event time behind arrival, within the grace
        at = T0 + timedelta(seconds=round(clock - lag, 3))
        timeline.append((clock, _rejected(at)))
        stamps.append(at)
    ticks = _ticks(5, clock + 200)
    merged = sorted([*timeline, *ticks], key=lambda item: item[0])
    out, _ = _play(merged)
    windows = [w for _, w in out]
    # Contiguous windows, each request counted in the window of its time, none late.
    starts = [w.start for w in windows]
    assert starts == [starts[0] + i * MINUTE for i in range(len(starts))]
    expected = Counter(window_start(at, MINUTE) for at in stamps)
    assert {w.start: w.requests for w in windows} == {s: expected.get(s, 0) for s in starts}
    assert set(expected) <= set(starts)  # the final silence closed the last one too
    assert sum(w.late_events for w in windows) == 0
    assert sum(1 for w in windows if w.requests == 0) > 0  # the outages left empty windows


def test_a_restart_in_the_middle_of_a_silence_gives_the_same_windows() -> None:
    timeline = [
        *[(float(s), _rejected(T0 + s * SECOND)) for s in (5, 50, 95)],
        *_ticks(105, 400),
    ]
    straight, _ = _play(timeline)
    cut = 20
    first, state = _play(timeline[:cut])
    assert state is not None
    restored = MetricsWindows.from_dict(state.to_dict())
    assert restored == state
    second, _ = _play(timeline[cut:], restored)
    assert first + second == straight


def test_a_row_stored_before_silences_closed_windows_waits_for_its_next_request() -> None:
    _, state = _play([(0.0, _rejected(T0))])
    assert state is not None
    old = state.to_dict()
    del old["heard"], old["arrived"]
    loaded = MetricsWindows.from_dict(old)
    assert (loaded.heard, loaded.arrived) == (None, None)
    out, _ = _play(_ticks(10, 600), loaded)  # nothing known of its arrivals: no silence
    assert out == []
    out, _ = _play([(600.0, _rejected(T0 + 600 * SECOND)), *_ticks(610, 700)], loaded)
    assert [w.requests for _, w in out][-1:] == [1]


def test_a_tick_before_any_request_keeps_no_state() -> None:
    folded = FOLD(None, [TICK], C0)
    assert folded.results == ()
    assert folded.state == MetricsWindows()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("0", True), ("0.1", True), ("10", True), ("3600", True),
     ("0.05", False), ("-1", False), ("3601", False)],
)  # fmt: skip
def test_the_tick_setting(value: str, accepted: bool) -> None:
    if accepted:
        assert load_settings({"STREAM_SILENCE_TICK_SECONDS": value}).silence_tick_seconds == float(
            value
        )
    else:
        with pytest.raises(ConfigError, match="STREAM_SILENCE_TICK_SECONDS"):
            load_settings({"STREAM_SILENCE_TICK_SECONDS": value})
    assert load_settings({}).silence_tick_seconds == 10.0


def test_silence_closes_an_open_drift_window_as_an_event_would_have() -> None:
    config = DriftWindowConfig(window=timedelta(hours=1), grace=timedelta(minutes=5))
    fold = drift_fold(config)
    profile = reference_profile()

    def summary(minute: int, seed: int) -> BatchSummary:
        at = T0 + minute * MINUTE
        rows = draw(np.random.default_rng(seed), 100)
        stats = WindowStats.empty(profile).update(rows)
        return BatchSummary(model_name="conversion", bucket_start=at, first_event=at,
                            last_event=at, serving_version="1.0.0", scored=100,
                            features=stats.to_dict(), reference=profile.to_dict())  # fmt: skip

    state = None
    for minute in (10, 20, 50):  # arriving when they happen: clock = event time
        state = fold(state, [summary(minute, minute)], C0 + minute * 60).state
    # A window plus the grace (65 min) after the last summary, not a second earlier.
    quiet = [fold(state, [TICK], C0 + (50 + m) * 60) for m in (30, 64)]
    assert [f.results for f in quiet] == [(), ()]
    ticked = fold(state, [TICK], C0 + (50 + 65) * 60)
    [closed] = ticked.results
    # The same window, counts and verdicts as when a summary at 65 minutes closes it.
    [by_event] = fold(state, [summary(65, 1)], C0 + 65 * 60).results
    assert closed == by_event
    assert (closed.start, closed.requests, closed.batches) == (T0, 300, 3)
    assert ticked.state is not None and ticked.state.windows == ()
    restored = DriftWindows.from_dict(ticked.state.to_dict())
    assert restored == ticked.state


def test_a_drift_replay_that_keeps_arriving_is_unaffected_by_ticks() -> None:
    config = DriftWindowConfig(window=timedelta(hours=1), grace=timedelta(minutes=5))
    fold = drift_fold(config)
    profile = reference_profile()
    past = T0 - timedelta(days=200)
    events: list[tuple[float, BatchSummary | SilenceTick]] = []
    for i in range(48):  # two days of summaries, one every 30 min, played 1 s apart
        at = past + i * 30 * MINUTE
        stats = WindowStats.empty(profile).update(draw(np.random.default_rng(i), 50))
        events.append((float(i), BatchSummary(
            model_name="conversion", bucket_start=at, first_event=at, last_event=at,
            serving_version="1.0.0", scored=50, features=stats.to_dict(),
            reference=profile.to_dict())))  # fmt: skip
    ticks: list[tuple[float, BatchSummary | SilenceTick]] = [(i + 0.5, TICK) for i in range(48)]

    def play(timeline: list[tuple[float, BatchSummary | SilenceTick]]) -> list[object]:
        state, out = None, []
        for clock, event in sorted(timeline, key=lambda item: item[0]):
            folded = fold(state, [event], C0 + clock)
            state, out = folded.state, out + list(folded.results)
        return out

    assert play(events + ticks) == play(events)
    assert len(play(events)) == 23  # the last hour waits for more, or for a silence
