"""The app's own metric windows: exact figures, empty windows, gaps, late events, restarts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.monitor import BatchSummary, JoinedOutcome, RequestCounted
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.service_windows import (
    MetricsWindowConfig,
    MetricsWindows,
    WindowMetrics,
    fold_event,
)
from stream_app.monitoring.sketch import QuantileSketch

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
CONFIG = MetricsWindowConfig(window=MINUTE, grace=10 * SECOND, max_empty=3)

Event = BatchSummary | RequestCounted | JoinedOutcome


def _batch(
    at: datetime,
    latencies: dict[str, Sequence[float]],
    failed: int = 0,
    last: datetime | None = None,
) -> BatchSummary:
    variants = {}
    for variant, values in latencies.items():
        counters = ABCounters()
        counters.record_exposures(values)
        variants[variant] = counters.to_dict()
    return BatchSummary(
        model_name="conversion",
        bucket_start=at.replace(second=0),
        first_event=at,
        last_event=at if last is None else last,
        serving_version="1.0.0",
        scored=sum(len(v) for v in latencies.values()),
        failed=failed,
        variants=variants,  # type: ignore[arg-type]
    )


def _count(kind: str, at: datetime) -> RequestCounted:
    return RequestCounted(kind=kind, timestamp=at)  # type: ignore[arg-type]


def _fold_all(
    events: Sequence[Event], state: MetricsWindows | None = None
) -> tuple[list[WindowMetrics], MetricsWindows]:
    out: list[WindowMetrics] = []
    state = MetricsWindows() if state is None else state
    for event in events:
        closed, state = fold_event(state, event, CONFIG)
        out.extend(closed)
    return out, state


def test_a_window_reports_p99_error_rate_and_volume_exactly() -> None:
    a, b = [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 250.0]
    out, state = _fold_all(
        [
            _batch(T0 + 5 * SECOND, {"A": a, "B": b}, failed=1),
            _count("rejected", T0 + 6 * SECOND),
            _count("rejected", T0 + 7 * SECOND),
            _count("throttled", T0 + 8 * SECOND),
            _count("rejected", T0 + 70 * SECOND),  # watermark 10:01:10 = end + grace
        ]
    )
    sketch = QuantileSketch()
    sketch.add_many(a + b)
    [window] = out
    assert (window.start, window.end) == (T0, T0 + MINUTE)
    assert (window.scored, window.failed, window.rejected, window.throttled) == (7, 1, 2, 1)
    assert window.requests == 11
    assert window.error_rate == 3 / 11
    assert window.latency_p99_ms == sketch.quantile(0.99)
    assert window.to_service_metrics("app").model_dump(mode="json") == {
        "service": "app",
        "timestamp": "2026-03-02T10:01:00+00:00",
        "latency_p99_ms": sketch.quantile(0.99),
        "error_rate": 3 / 11,
        "prediction_volume": 7,
        "requests": 11,
        "late_events": 0,
    }
    assert [(w.start, w.rejected) for w in state.windows] == [(T0 + MINUTE, 1)]


@pytest.mark.parametrize(
    ("last_event", "emitted"),
    [(T0 + 69 * SECOND, 0), (T0 + 70 * SECOND, 1)],
)
def test_a_window_closes_when_the_watermark_passes_its_end_by_the_grace(
    last_event: datetime, emitted: int
) -> None:
    out, _ = _fold_all([_count("rejected", T0), _batch(T0 + MINUTE, {"A": [1.0]}, last=last_event)])
    assert len(out) == emitted


def test_empty_windows_in_a_short_gap_report_volume_zero_and_no_error_rate() -> None:
    out, _ = _fold_all(
        [_batch(T0, {"A": [1.0, 2.0]}), _batch(T0 + 3 * MINUTE + 10 * SECOND, {"A": [3.0]})]
    )
    assert [(w.start, w.scored, w.requests, w.error_rate) for w in out] == [
        (T0, 2, 2, 0.0),
        (T0 + MINUTE, 0, 0, None),
        (T0 + 2 * MINUTE, 0, 0, None),
    ]
    assert out[1].to_service_metrics("app").model_dump(mode="json") == {
        "service": "app",
        "timestamp": "2026-03-02T10:02:00+00:00",
        "prediction_volume": 0,
        "requests": 0,
        "late_events": 0,
    }


def test_a_long_gap_emits_at_most_max_empty_windows_then_resumes() -> None:
    resume = T0 + timedelta(hours=5)
    out, state = _fold_all(
        [
            _batch(T0, {"A": [1.0]}),
            _batch(resume, {"A": [2.0]}),
            _batch(resume + MINUTE + 10 * SECOND, {"A": [3.0]}),
        ]
    )
    assert [(w.start, w.scored) for w in out] == [
        (T0, 1),
        (T0 + MINUTE, 0),
        (T0 + 2 * MINUTE, 0),
        (T0 + 3 * MINUTE, 0),
        (resume, 1),
    ]
    assert state.next_start == resume + MINUTE


def test_late_events_are_counted_not_merged_and_reported_once() -> None:
    out, state = _fold_all(
        [
            _count("rejected", T0),
            _count("rejected", T0 + 75 * SECOND),  # closes 10:00
            _count("throttled", T0 + 30 * SECOND),  # late
            _batch(T0 + 40 * SECOND, {"A": [1.0, 2.0]}, failed=1),  # late: 3 requests
            _count("rejected", T0 + 2 * MINUTE + 10 * SECOND),  # closes 10:01
            _count("rejected", T0 + 3 * MINUTE + 10 * SECOND),  # closes 10:02
        ]
    )
    assert [(w.start, w.requests, w.late_events) for w in out] == [
        (T0, 1, 0),
        (T0 + MINUTE, 1, 4),
        (T0 + 2 * MINUTE, 1, 0),
    ]
    assert state.late_events == 0


def test_an_out_of_order_event_within_the_grace_joins_its_window() -> None:
    out, _ = _fold_all(
        [
            _count("rejected", T0 + MINUTE + 5 * SECOND),
            _count("throttled", T0 + 50 * SECOND),  # earlier window, still open
            _count("rejected", T0 + 2 * MINUTE + 10 * SECOND),
        ]
    )
    assert [(w.start, w.rejected, w.throttled) for w in out] == [
        (T0, 0, 1),
        (T0 + MINUTE, 1, 0),
    ]


def test_joined_outcomes_are_ignored() -> None:
    _, state = _fold_all([_count("rejected", T0)])
    outcome = JoinedOutcome(
        timestamp=T0 + timedelta(hours=2),
        request_id="r1",
        variant="A",
        model_version="1.0.0",
        converted=1,
    )
    assert fold_event(state, outcome, CONFIG) == ([], state)


def test_a_restart_from_the_stored_state_gives_the_same_windows() -> None:
    events: list[Event] = [
        _batch(T0 + i * 25 * SECOND, {"A": [float(i + 1)] * 3, "B": [2.0 * i + 1]}, failed=i % 2)
        for i in range(12)
    ]
    straight, _ = _fold_all(events)
    first, state = _fold_all(events[:5])
    restored = MetricsWindows.from_dict(state.to_dict())
    assert restored.to_dict() == state.to_dict()
    second, _ = _fold_all(events[5:], restored)
    assert first + second == straight


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": timedelta(0)}, "window size"),
        ({"grace": -SECOND}, "grace"),
        ({"max_empty": -1}, "max_empty"),
        ({"max_empty": True}, "max_empty"),
    ],
)
def test_config_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricsWindowConfig(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-40, 600), st.sampled_from(["rejected", "throttled"])),
        min_size=1,
        max_size=60,
    )
)
def test_every_request_is_counted_once_in_a_window_or_as_late(
    offsets: list[tuple[int, str]],
) -> None:
    # Event times jitter around a rising clock, so some arrive after their window closed.
    events = [_count(kind, T0 + (i * 5 + jitter) * SECOND) for i, (jitter, kind) in
              enumerate(offsets)]  # fmt: skip
    out, state = _fold_all(events)
    in_windows = sum(w.requests for w in out) + sum(w.rejected + w.throttled for w in state.windows)
    late = sum(w.late_events for w in out) + state.late_events
    assert in_windows + late == len(events)
    starts = [w.start for w in out]
    assert starts == sorted(set(starts))
