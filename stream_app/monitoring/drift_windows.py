"""Event-time drift windows: fold batch summaries, close on the watermark, compare.

The drift agent keeps one :class:`DriftWindows` per model in a table and calls
:func:`fold_summary` for each ``BatchSummary``. A summary's feature statistics go into the
epoch-aligned window of its ``bucket_start``; windows are also split by the serving
version and the reference profile the statistics were binned on, because ``compare``
refuses statistics built on another profile (a model swap starts a new window). When
the watermark (the newest ``last_event`` seen) minus the grace passes a window's end,
the window is compared with its profile and leaves the state as a
:class:`ClosedDriftWindow`, once. A summary for a window that has already closed is not
merged: its requests are counted as late and reported with the next closed window.
A :class:`SilenceTick` closes the open windows as they are once no summary has arrived
for a drift window plus the grace by the worker's clock (``silence.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.monitor import BatchSummary, SilenceTick
from schemas.reports import DriftReportMessage, FeatureDistribution
from stream_app.fold import Fold, fold_each
from stream_app.monitoring.drift import DriftConfig, DriftReport, compare
from stream_app.monitoring.drift_report import SEVERITY_RANK
from stream_app.monitoring.drift_shares import feature_shares, most_drifted
from stream_app.monitoring.event_time import check_window, closes, window_start
from stream_app.monitoring.profile import ReferenceProfile
from stream_app.monitoring.silence import silent_watermark
from stream_app.monitoring.stats import WindowStats

__all__ = [
    "ClosedDriftWindow",
    "DriftWindowConfig",
    "DriftWindows",
    "OpenDriftWindow",
    "drift_fold",
    "drift_observations",
    "fold_summary",
    "reference_id",
]


def reference_id(reference: Mapping[str, Any]) -> str:
    """A short digest of a reference profile's JSON form: equal profiles, equal ids.

    Example:
        >>> reference_id({"a": 1, "b": [2]}) == reference_id({"b": [2], "a": 1})
        True
        >>> len(reference_id({}))
        16
    """
    canonical = json.dumps(reference, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DriftWindowConfig:
    """Window length, grace after its end, and the thresholds of ``compare``."""

    window: timedelta = timedelta(hours=1)
    grace: timedelta = timedelta(minutes=1)
    drift: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self) -> None:
        check_window(self.window, self.grace)


@dataclass(frozen=True)
class OpenDriftWindow:
    """The statistics of one window of one model, serving version and reference profile."""

    start: datetime
    model_name: str
    serving_version: str
    reference: Mapping[str, Any]  # ReferenceProfile.to_dict()
    stats: WindowStats
    batches: int = 0
    requests: int = 0

    @property
    def reference_id(self) -> str:
        return reference_id(self.reference)

    def same_split(self, start: datetime, summary: BatchSummary, ref_id: str) -> bool:
        return (self.start, self.model_name, self.serving_version, self.reference_id) == (
            start,
            summary.model_name,
            summary.serving_version,
            ref_id,
        )


@dataclass(frozen=True)
class ClosedDriftWindow:
    """A window at its close: the comparison with its profile, and the late count."""

    model_name: str
    serving_version: str
    reference_id: str
    start: datetime
    end: datetime
    batches: int
    requests: int
    late_events: int
    report: DriftReport
    # The most drifted feature's shares per bin, reference beside window (drift_shares).
    distribution: Mapping[str, Any] | None = None

    @property
    def window_id(self) -> str:
        """Unique per window: model, version, profile and start."""
        return "|".join(
            (self.model_name, self.serving_version, self.reference_id, self.start.isoformat())
        )

    def to_message(self) -> DriftReportMessage:
        """The drift-reports message: ids, bounds, counts and the report's verdicts."""
        report = self.report
        return DriftReportMessage(
            window_id=self.window_id, model_name=self.model_name,
            model_version=self.serving_version, reference_id=self.reference_id,
            batches=self.batches, requests=self.requests, late_events=self.late_events,
            drift_detected=report.drift_detected, drifting_features=report.drifting_features,
            severity=report.severity, window_start=self.start, window_end=self.end,
            features=report.verdicts(),
            distribution=None if self.distribution is None
            else FeatureDistribution.model_validate(self.distribution),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """:meth:`to_message` as JSON-safe Python values."""
        return self.to_message().model_dump(mode="json")


@dataclass(frozen=True)
class DriftWindows:
    """One model's open windows, its watermark and the late requests not yet reported;
    ``heard`` and ``arrived`` as in ``service_windows.MetricsWindows``."""

    watermark: datetime | None = None
    windows: tuple[OpenDriftWindow, ...] = ()
    late_events: int = 0
    heard: datetime | None = None
    arrived: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for a Faust table."""
        return {
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "late_events": self.late_events,
            "heard": None if self.heard is None else self.heard.isoformat(),
            "arrived": self.arrived,
            "windows": [
                {
                    "start": w.start.isoformat(),
                    "model_name": w.model_name,
                    "serving_version": w.serving_version,
                    "reference": dict(w.reference),
                    "stats": w.stats.to_dict(),
                    "batches": w.batches,
                    "requests": w.requests,
                }
                for w in self.windows
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftWindows:
        """Rebuild the state from :meth:`to_dict` output."""
        mark = data["watermark"]
        windows = tuple(
            OpenDriftWindow(
                start=datetime.fromisoformat(w["start"]),
                model_name=w["model_name"],
                serving_version=w["serving_version"],
                reference=w["reference"],
                stats=WindowStats.from_dict(w["stats"]),
                batches=int(w["batches"]),
                requests=int(w["requests"]),
            )
            for w in data["windows"]
        )
        heard, arrived = data.get("heard"), data.get("arrived")  # absent in older rows
        return cls(
            None if mark is None else datetime.fromisoformat(mark),
            windows,
            int(data["late_events"]),
            None if heard is None else datetime.fromisoformat(heard),
            None if arrived is None else float(arrived),
        )


def _merged(
    windows: tuple[OpenDriftWindow, ...], start: datetime, summary: BatchSummary
) -> tuple[OpenDriftWindow, ...]:
    """The windows with ``summary`` folded in; ValueError if its stats do not fit its profile."""
    ref_id = reference_id(summary.reference)
    incoming = WindowStats.from_dict(summary.features)
    kept, target = [], None
    for w in windows:
        if w.same_split(start, summary, ref_id):
            target = w
        else:
            kept.append(w)
    if target is None:
        profile = ReferenceProfile.from_dict(summary.reference)
        target = OpenDriftWindow(
            start, summary.model_name, summary.serving_version, summary.reference,
            WindowStats.empty(profile),
        )  # fmt: skip
    # Merging onto a window binned on the profile checks features, cuts and categories.
    grown = replace(
        target,
        stats=target.stats.merge(incoming),
        batches=target.batches + 1,
        requests=target.requests + summary.scored,
    )
    return (*kept, grown)


def fold_summary(
    state: DriftWindows, summary: BatchSummary, config: DriftWindowConfig
) -> tuple[list[ClosedDriftWindow], DriftWindows]:
    """Fold one batch summary in, advance the watermark and close what it passes.

    A summary without a reference profile (the bundle has none) only advances the
    watermark. Raises ValueError (or KeyError) when the summary's statistics do not
    match its own profile; the state is then unchanged.

    Example:
        >>> from datetime import UTC
        >>> profile = ReferenceProfile.from_data({"x": [1.0, 2.0, 3.0, 4.0]}, n_bins=2)
        >>> def summary(minute, values):
        ...     at = datetime(2026, 3, 2, 10, tzinfo=UTC) + timedelta(minutes=minute)
        ...     stats = WindowStats.empty(profile).update({"x": values})
        ...     return BatchSummary(model_name="m", bucket_start=at, first_event=at,
        ...         last_event=at, serving_version="1", scored=len(values),
        ...         features=stats.to_dict(), reference=profile.to_dict())
        >>> config = DriftWindowConfig(timedelta(hours=1), timedelta(minutes=1))
        >>> closed, state = fold_summary(DriftWindows(), summary(5, [1.0, 3.0]), config)
        >>> closed, state.windows[0].requests
        ([], 2)
        >>> closed, state = fold_summary(state, summary(61, [2.0]), config)
        >>> [(c.start.hour, c.end.hour, c.requests) for c in closed]
        [(10, 11, 2)]
        >>> closed, state = fold_summary(state, summary(30, [4.0]), config)  # hour 10 closed
        >>> closed, state.late_events
        ([], 1)
    """
    if not summary.features or not summary.reference:
        return _advance(state, summary.last_event, config)
    start = window_start(summary.bucket_start, config.window)
    if closes(start + config.window, state.watermark, config.grace):
        late = replace(state, late_events=state.late_events + summary.scored)
        return _advance(late, summary.last_event, config)
    merged = replace(state, windows=_merged(state.windows, start, summary))
    return _advance(merged, summary.last_event, config)


def drift_fold(
    config: DriftWindowConfig,
) -> Fold[DriftWindows, BatchSummary | SilenceTick, ClosedDriftWindow]:
    """The drift step as a fold: one model's summaries in, the windows they close out.

    ``now`` is the partition's clock: a summary records it as its arrival; a tick at it
    closes the open windows once the summaries have been silent for a window plus the
    grace (``silence.silent_watermark``).
    """

    def step(
        state: DriftWindows | None, event: BatchSummary | SilenceTick, now: float
    ) -> tuple[DriftWindows, list[ClosedDriftWindow]]:
        current = state or DriftWindows()
        if isinstance(event, SilenceTick):
            mark = silent_watermark(current.heard, current.arrived, now, config.window,
                                    config.grace)  # fmt: skip
            closed, new_state = ([], current) if mark is None else _advance(current, mark, config)
            return new_state, closed
        closed, new_state = fold_summary(current, event, config)
        last = event.last_event
        heard = last if current.heard is None else max(current.heard, last)
        return replace(new_state, heard=heard, arrived=now), closed

    return fold_each(step)


def _advance(
    state: DriftWindows, moment: datetime, config: DriftWindowConfig
) -> tuple[list[ClosedDriftWindow], DriftWindows]:
    mark = moment if state.watermark is None else max(state.watermark, moment)
    ready = sorted(
        (w for w in state.windows if closes(w.start + config.window, mark, config.grace)),
        key=lambda w: (w.start, w.model_name, w.serving_version, w.reference_id),
    )
    if not ready:
        return [], replace(state, watermark=mark)
    closed = []
    late = state.late_events
    for w in ready:
        end = w.start + config.window
        profile = ReferenceProfile.from_dict(w.reference)
        report = compare(profile, w.stats, config.drift, window_start=w.start, window_end=end)
        feature = most_drifted(report)
        shares = None if feature is None else feature_shares(profile, w.stats, feature)
        closed.append(
            ClosedDriftWindow(
                w.model_name, w.serving_version, w.reference_id, w.start, end,
                w.batches, w.requests, late, report, shares,
            )
        )  # fmt: skip
        late = 0  # reported once, with the first window that closes after it
    still_open = tuple(w for w in state.windows if w not in ready)
    return closed, replace(state, watermark=mark, windows=still_open, late_events=0)


def drift_observations(closed: Sequence[ClosedDriftWindow]) -> list[tuple[datetime, float]]:
    """One ``drift_severity`` observation per window end: 0 clean, 1 warning, 2 critical.

    Windows of several versions that end together give one observation with the worst
    severity, since the alert engine takes one observation per time.

    Example:
        >>> drift_observations([])
        []
    """
    worst: dict[datetime, int] = {}
    for window in closed:
        rank = SEVERITY_RANK[window.report.severity]
        worst[window.end] = max(worst.get(window.end, 0), rank)
    return [(end, float(rank)) for end, rank in sorted(worst.items())]
