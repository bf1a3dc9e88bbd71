"""The app's own service metrics per event-time window: latency p99, error rate, volume.

The service-metrics agent keeps one :class:`MetricsWindows` per monitor-events key in a
table and calls :func:`fold_event` for each event. Scored batches add their scored and
failed counts and their variants' latency sketches; requests counted at intake add
rejections and throttles; joined outcomes are not service metrics and are ignored.
When the watermark minus the grace passes a window's end, the window leaves the state
as a :class:`WindowMetrics`. Windows in which nothing happened are emitted too, with a
volume of 0, so that a stop in traffic can raise the volume alerts; after a long
gap at most ``max_empty`` of them are emitted. A :class:`SilenceTick` closes the open
windows of an input silent for longer than a window plus the grace by the worker's
clock (``stream_app/monitoring/silence.py``), so an outage closes windows too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.metrics import AppServiceMetrics
from schemas.monitor import BatchSummary, JoinedOutcome, RequestCounted, SilenceTick
from stream_app.fold import Fold, fold_each
from stream_app.monitoring.event_time import check_window, closes, window_start
from stream_app.monitoring.silence import silent_watermark
from stream_app.monitoring.sketch import QuantileSketch

__all__ = [
    "MetricsEvent",
    "MetricsWindow",
    "MetricsWindowConfig",
    "MetricsWindows",
    "WindowMetrics",
    "fold_event",
    "fold_silence",
    "metrics_fold",
]

_COUNTS = ("scored", "failed", "rejected", "throttled")

MetricsEvent = BatchSummary | RequestCounted | JoinedOutcome | SilenceTick


@dataclass(frozen=True)
class MetricsWindowConfig:
    """Window length, grace, and how many empty windows to emit after a gap at most."""

    window: timedelta = timedelta(minutes=1)
    grace: timedelta = timedelta(minutes=1)
    max_empty: int = 60

    def __post_init__(self) -> None:
        check_window(self.window, self.grace)
        if isinstance(self.max_empty, bool) or not isinstance(self.max_empty, int):
            raise ValueError(f"max_empty must be an integer in [0, inf), got {self.max_empty!r}")
        if self.max_empty < 0:
            raise ValueError(f"max_empty must be an integer in [0, inf), got {self.max_empty!r}")


@dataclass(frozen=True)
class MetricsWindow:
    """Counts of one open window; ``latency`` merges every scored batch's sketches."""

    start: datetime
    scored: int = 0
    failed: int = 0
    rejected: int = 0
    throttled: int = 0
    latency: QuantileSketch | None = None  # never mutated: merge returns a new sketch


@dataclass(frozen=True)
class WindowMetrics:
    """One closed window's figures, ready to publish as ServiceMetrics."""

    start: datetime
    end: datetime
    scored: int
    failed: int
    rejected: int
    throttled: int
    latency_p99_ms: float | None
    late_events: int

    @property
    def requests(self) -> int:
        """Every request the window saw: scored, failed, rejected or throttled."""
        return self.scored + self.failed + self.rejected + self.throttled

    @property
    def error_rate(self) -> float | None:
        """(rejected + failed) / requests; None for a window without requests."""
        return (self.rejected + self.failed) / self.requests if self.requests else None

    def to_service_metrics(self, service: str) -> AppServiceMetrics:
        """The service-metrics message, stamped at the window's end; unknown figures left out.

        Example:
            >>> from datetime import UTC
            >>> t = datetime(2026, 3, 2, 10, tzinfo=UTC)
            >>> WindowMetrics(t, t + timedelta(minutes=1), 0, 0, 0, 0, None, 0
            ...               ).to_service_metrics("app").model_dump_json()
            '{"service":"app","timestamp":"2026-03-02T10:01:00+00:00","prediction_volume":0.0,\
"requests":0,"late_events":0}'
        """
        return AppServiceMetrics(
            service=service,
            timestamp=self.end,
            latency_p99_ms=self.latency_p99_ms,
            error_rate=self.error_rate,
            prediction_volume=self.scored,
            requests=self.requests,
            late_events=self.late_events,
        )


@dataclass(frozen=True)
class MetricsWindows:
    """The open windows, the watermark, the next window to emit and the late count.

    ``heard`` is the newest event time of a request counted (the watermark without
    silences) and ``arrived`` the partition clock (seconds) when the last one arrived.
    """

    watermark: datetime | None = None
    next_start: datetime | None = None
    windows: tuple[MetricsWindow, ...] = ()
    late_events: int = 0
    heard: datetime | None = None
    arrived: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for a Faust table."""
        return {
            "watermark": _iso(self.watermark),
            "next_start": _iso(self.next_start),
            "late_events": self.late_events,
            "heard": _iso(self.heard),
            "arrived": self.arrived,
            "windows": [
                {
                    "start": w.start.isoformat(),
                    **{name: getattr(w, name) for name in _COUNTS},
                    "latency": None if w.latency is None else w.latency.to_dict(),
                }
                for w in self.windows
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsWindows:
        """Rebuild the state from :meth:`to_dict` output."""
        windows = tuple(
            MetricsWindow(
                start=datetime.fromisoformat(w["start"]),
                latency=None if w["latency"] is None else QuantileSketch.from_dict(w["latency"]),
                **{name: int(w[name]) for name in _COUNTS},
            )
            for w in data["windows"]
        )
        arrived = data.get("arrived")  # rows written before silences closed windows lack it
        return cls(
            _time(data["watermark"]),
            _time(data["next_start"]),
            windows,
            int(data["late_events"]),
            _time(data.get("heard")),
            None if arrived is None else float(arrived),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _contribution(
    event: BatchSummary | RequestCounted,
) -> tuple[dict[str, int], QuantileSketch | None]:
    if isinstance(event, RequestCounted):
        return {event.kind: 1}, None
    sketch = None
    for counters in event.variants.values():
        # ABCounters.to_dict() of the variant: its "sketch" holds the batch's latencies.
        part = QuantileSketch.from_dict(counters["sketch"])
        sketch = part if sketch is None else sketch.merge(part)
    return {"scored": event.scored, "failed": event.failed}, sketch


def _add(
    window: MetricsWindow, counts: Mapping[str, int], sketch: QuantileSketch | None
) -> MetricsWindow:
    latency = window.latency
    if sketch is not None:
        latency = sketch if latency is None else latency.merge(sketch)
    added = {name: getattr(window, name) + counts.get(name, 0) for name in _COUNTS}
    return replace(window, latency=latency, **added)


def fold_event(
    state: MetricsWindows,
    event: BatchSummary | RequestCounted | JoinedOutcome | SilenceTick,
    config: MetricsWindowConfig,
) -> tuple[list[WindowMetrics], MetricsWindows]:
    """Count one monitor event in its window, advance the watermark, emit closed windows.

    Raises ValueError or KeyError for a batch summary whose latency sketches are
    malformed; the state is then unchanged.

    Example:
        >>> from datetime import UTC
        >>> t0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
        >>> config = MetricsWindowConfig(timedelta(minutes=1), timedelta(seconds=0))
        >>> state = MetricsWindows()
        >>> for second in (10, 20, 190):  # two rejections, then one 3 minutes later
        ...     at = t0 + timedelta(seconds=second)
        ...     out, state = fold_event(state, RequestCounted(kind="rejected", timestamp=at),
        ...                             config)
        >>> [(m.start.minute, m.requests, m.error_rate, m.scored) for m in out]
        [(0, 2, 1.0, 0), (1, 0, None, 0), (2, 0, None, 0)]
    """
    if isinstance(event, JoinedOutcome | SilenceTick):
        return [], state
    counts, sketch = _contribution(event)
    at = event.bucket_start if isinstance(event, BatchSummary) else event.timestamp
    moment = event.last_event if isinstance(event, BatchSummary) else event.timestamp
    start = window_start(at, config.window)
    if closes(start + config.window, state.watermark, config.grace):
        late = sum(counts.values())
        return _advance(replace(state, late_events=state.late_events + late), moment, config)
    others = [w for w in state.windows if w.start != start]
    current = next((w for w in state.windows if w.start == start), MetricsWindow(start))
    first = start if state.next_start is None else min(state.next_start, start)
    grown = replace(state, next_start=first, windows=(*others, _add(current, counts, sketch)))
    return _advance(grown, moment, config)


def fold_silence(
    state: MetricsWindows, now: float, config: MetricsWindowConfig
) -> tuple[list[WindowMetrics], MetricsWindows]:
    """At a tick of the clock ``now`` (seconds): when no request has arrived for a window
    plus the grace, close the windows the silence has passed, as they are.

    Example:
        >>> from datetime import UTC
        >>> t0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
        >>> config = MetricsWindowConfig(timedelta(minutes=1), timedelta(seconds=30))
        >>> _, state = fold_event(MetricsWindows(), RequestCounted(kind="rejected",
        ...                       timestamp=t0 + timedelta(seconds=30)), config)
        >>> state = replace(state, heard=t0 + timedelta(seconds=30), arrived=1000.0)
        >>> fold_silence(state, 1089.0, config)[0]  # 89 s of silence: nothing closes
        []
        >>> out, state = fold_silence(state, 1150.0, config)  # 150 s: two windows
        >>> [(m.start.minute, m.requests) for m in out], state.watermark.time()
        ([(0, 1), (1, 0)], datetime.time(10, 3))
    """
    mark = silent_watermark(state.heard, state.arrived, now, config.window, config.grace)
    if mark is None:
        return [], state
    return _advance(state, mark, config)


def metrics_fold(
    config: MetricsWindowConfig,
) -> Fold[MetricsWindows, MetricsEvent, WindowMetrics]:
    """The service-metrics step as a fold: monitor events in, closed windows out.

    ``now`` is the partition's clock: a request counted records it as its arrival, a
    :class:`SilenceTick` closes the windows of a silence (:func:`fold_silence`).
    """

    def step(
        state: MetricsWindows | None, event: MetricsEvent, now: float
    ) -> tuple[MetricsWindows, list[WindowMetrics]]:
        current = state or MetricsWindows()
        if isinstance(event, SilenceTick):
            closed, new_state = fold_silence(current, now, config)
            return new_state, closed
        closed, new_state = fold_event(current, event, config)
        if isinstance(event, BatchSummary | RequestCounted):
            moment = event.last_event if isinstance(event, BatchSummary) else event.timestamp
            heard = moment if current.heard is None else max(current.heard, moment)
            new_state = replace(new_state, heard=heard, arrived=now)
        return new_state, closed

    return fold_each(step)


def _closed(window: MetricsWindow, size: timedelta, late: int) -> WindowMetrics:
    p99 = None if window.latency is None else window.latency.quantile(0.99)
    counts = {name: getattr(window, name) for name in _COUNTS}
    return WindowMetrics(
        start=window.start, end=window.start + size, latency_p99_ms=p99, late_events=late, **counts
    )


def _advance(
    state: MetricsWindows, moment: datetime, config: MetricsWindowConfig
) -> tuple[list[WindowMetrics], MetricsWindows]:
    mark = moment if state.watermark is None else max(state.watermark, moment)
    size, start = config.window, state.next_start
    opened = {w.start: w for w in state.windows}
    out: list[WindowMetrics] = []
    late, empty_run = state.late_events, 0
    while start is not None and closes(start + size, mark, config.grace):
        if start in opened:
            out.append(_closed(opened.pop(start), size, late))
            late, empty_run = 0, 0
        elif empty_run < config.max_empty:
            out.append(_closed(MetricsWindow(start), size, late))
            late, empty_run = 0, empty_run + 1
        else:
            # A long gap: skip to the next window with data, or to the one still open.
            later = [s for s in opened if s > start]
            start = min(later) if later else window_start(mark - config.grace, size)
            empty_run = 0
            continue
        start += size
    return out, replace(
        state, watermark=mark, next_start=start, windows=tuple(opened.values()), late_events=late
    )
