"""Drift windows: assignment, close on the watermark, late events, version split, restarts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.monitor import BatchSummary
from stream_app.monitoring.drift import DriftConfig, compare
from stream_app.monitoring.drift_windows import (
    ClosedDriftWindow,
    DriftWindowConfig,
    DriftWindows,
    drift_observations,
    fold_summary,
    reference_id,
)
from stream_app.monitoring.stats import ReferenceProfile, WindowStats
from tests.utils.drift_data import draw, reference_profile

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CONFIG = DriftWindowConfig(window=timedelta(hours=1), grace=timedelta(minutes=5))
PROFILE = reference_profile()


def _summary(
    at: datetime,
    rows: dict[str, np.ndarray],
    *,
    profile: ReferenceProfile = PROFILE,
    version: str = "1.0.0",
    last: datetime | None = None,
) -> BatchSummary:
    stats = WindowStats.empty(profile).update(rows)
    return BatchSummary(
        model_name="conversion",
        bucket_start=at,
        first_event=at,
        last_event=at if last is None else last,
        serving_version=version,
        scored=len(next(iter(rows.values()))),
        features=stats.to_dict(),
        reference=profile.to_dict(),
    )


def _rows(seed: int, n: int = 200, age_shift: float = 0.0) -> dict[str, np.ndarray]:
    rows = draw(np.random.default_rng(seed), n)
    rows["age"] = rows["age"] + age_shift
    return rows


def _fold_all(
    summaries: Sequence[BatchSummary], state: DriftWindows | None = None
) -> tuple[list[ClosedDriftWindow], DriftWindows]:
    closed: list[ClosedDriftWindow] = []
    state = DriftWindows() if state is None else state
    for summary in summaries:
        out, state = fold_summary(state, summary, CONFIG)
        closed.extend(out)
    return closed, state


@pytest.mark.parametrize(
    ("minute", "window_start"),
    [
        (0, T0),
        (59, T0),
        (60, T0 + timedelta(hours=1)),
        (-1, T0 - timedelta(hours=1)),
    ],
)
def test_a_summary_lands_in_the_epoch_aligned_window_of_its_bucket(
    minute: int, window_start: datetime
) -> None:
    _, state = fold_summary(DriftWindows(), _summary(T0 + minute * MINUTE, _rows(1)), CONFIG)
    assert [w.start for w in state.windows] == [window_start]


@pytest.mark.parametrize(
    ("watermark_after_end", "closed"),
    [
        (timedelta(0), False),
        (timedelta(minutes=4, seconds=59), False),
        (timedelta(minutes=5), True),
    ],
)
def test_a_window_closes_once_the_watermark_passes_its_end_by_the_grace(
    watermark_after_end: timedelta, closed: bool
) -> None:
    first = _summary(T0, _rows(1))
    # A summary of the next window whose last event sets the watermark.
    mark = T0 + timedelta(hours=1) + watermark_after_end
    second = _summary(T0 + timedelta(hours=1), _rows(2), last=mark)
    out, state = _fold_all([first, second])
    assert [(c.start, c.end) for c in out] == ([(T0, T0 + timedelta(hours=1))] if closed else [])
    assert state.watermark == mark


def test_a_closed_window_reports_exactly_the_merged_statistics_and_compare() -> None:
    parts = [_rows(seed) for seed in (1, 2, 3)]
    summaries = [_summary(T0 + i * 10 * MINUTE, rows) for i, rows in enumerate(parts)]
    closing = _summary(T0 + timedelta(hours=1, minutes=5), _rows(4, n=1))
    out, state = _fold_all([*summaries, closing])
    whole = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    expected = compare(
        PROFILE,
        WindowStats.empty(PROFILE).update(whole),
        DriftConfig(),
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
    )
    [window] = out
    assert (window.batches, window.requests, window.late_events) == (3, 600, 0)
    got = window.report
    assert (got.severity, got.drifting_features) == (expected.severity, expected.drifting_features)
    for name, feature in expected.features.items():
        # Bin counts merge exactly, so every test on them agrees to the bit; the mean
        # merges by Chan's update, so the z-score agrees to rounding.
        mine = got.features[name]
        assert (mine.n, mine.statistic, mine.psi, mine.p_value) == (
            feature.n, feature.statistic, feature.psi, feature.p_value
        )  # fmt: skip
        if feature.z_score is None:  # categorical: no mean
            assert mine.z_score is None
        else:
            assert mine.z_score == pytest.approx(feature.z_score, rel=1e-9, abs=1e-12)
    assert [w.start for w in state.windows] == [T0 + timedelta(hours=1)]


def test_reference_traffic_is_clean_and_a_shifted_feature_is_named() -> None:
    clean = [_summary(T0 + i * MINUTE, _rows(10 + i)) for i in range(3)]
    shifted = [_summary(T0 + timedelta(hours=1) + i * MINUTE, _rows(20 + i, age_shift=15.0))
               for i in range(3)]  # fmt: skip
    closing = _summary(T0 + timedelta(hours=2, minutes=5), _rows(30, n=1))
    out, _ = _fold_all([*clean, *shifted, closing])
    assert [(c.report.severity, c.report.drifting_features) for c in out] == [
        ("none", ()),
        ("critical", ("age",)),
    ]
    assert drift_observations(out) == [
        (T0 + timedelta(hours=1), 0.0),
        (T0 + timedelta(hours=2), 2.0),
    ]


def test_a_closed_window_carries_its_most_drifted_features_shares() -> None:
    shifted = [_summary(T0 + i * MINUTE, _rows(20 + i, age_shift=15.0)) for i in range(3)]
    closing = _summary(T0 + timedelta(hours=1, minutes=5), _rows(30, n=1))
    (window,), _ = _fold_all([*shifted, closing])
    shares = window.to_dict()["distribution"]
    age = PROFILE.numeric["age"]
    assert shares["feature"] == "age"
    assert len(shares["bins"]) == len(age.bin_counts)
    assert shares["reference"] == [round(n / age.count, 6) for n in age.bin_counts]
    merged = WindowStats.empty(PROFILE)
    for i in range(3):
        merged = merged.update(_rows(20 + i, age_shift=15.0))
    counts = merged.numeric["age"].bin_counts
    assert shares["current"] == [round(n / sum(counts), 6) for n in counts]
    # Shifted up by 15 years: the top bin holds more of the window than of the reference.
    assert shares["current"][-1] > shares["reference"][-1]


def test_events_for_a_closed_window_are_late_not_merged_and_reported_once() -> None:
    out, state = _fold_all(
        [
            _summary(T0, _rows(1)),
            _summary(T0 + timedelta(hours=1, minutes=10), _rows(2)),  # closes hour 10
            _summary(T0 + 30 * MINUTE, _rows(3, n=7)),  # hour 10 again: late
            _summary(T0 + 40 * MINUTE, _rows(4, n=5)),  # late
        ]
    )
    assert [(c.start, c.requests, c.late_events) for c in out] == [(T0, 200, 0)]
    assert state.late_events == 12
    assert [(w.start, w.requests) for w in state.windows] == [(T0 + timedelta(hours=1), 200)]
    more, state = fold_summary(
        state, _summary(T0 + timedelta(hours=2, minutes=5), _rows(5)), CONFIG
    )
    assert [(c.start, c.late_events) for c in more] == [(T0 + timedelta(hours=1), 12)]
    assert state.late_events == 0


def test_a_model_swap_splits_the_window_by_version_and_profile() -> None:
    other = ReferenceProfile.from_data(_rows(99, n=2000), categorical=["category_preference"])
    out, _ = _fold_all(
        [
            _summary(T0, _rows(1), version="1.0.0"),
            _summary(T0 + 20 * MINUTE, _rows(2, age_shift=15.0), version="1.1.0", profile=other),
            _summary(T0 + 30 * MINUTE, _rows(3), version="1.0.0"),
            _summary(T0 + timedelta(hours=1, minutes=5), _rows(4, n=1)),
        ]
    )
    by_version = {c.serving_version: c for c in out}
    assert sorted(by_version) == ["1.0.0", "1.1.0"]
    assert (by_version["1.0.0"].requests, by_version["1.0.0"].batches) == (400, 2)
    assert by_version["1.1.0"].reference_id == reference_id(other.to_dict())
    assert by_version["1.1.0"].report.drifting_features == ("age",)
    assert len({c.window_id for c in out}) == 2
    # Both end at 11:00: one observation, the worse severity.
    assert drift_observations(out) == [(T0 + timedelta(hours=1), 2.0)]


def test_a_restart_from_the_stored_state_gives_the_same_reports() -> None:
    summaries = [_summary(T0 + i * 25 * MINUTE, _rows(40 + i)) for i in range(6)]
    straight, _ = _fold_all(summaries)
    first, state = _fold_all(summaries[:3])
    restored = DriftWindows.from_dict(state.to_dict())
    assert restored == state
    second, _ = _fold_all(summaries[3:], restored)
    assert [c.to_dict() for c in first + second] == [c.to_dict() for c in straight]


def test_statistics_binned_on_another_profile_are_refused() -> None:
    other = ReferenceProfile.from_data(_rows(99, n=2000), categorical=["category_preference"])
    good = _summary(T0, _rows(1))
    bad = good.model_copy(update={"reference": other.to_dict()})
    with pytest.raises(ValueError, match="bin edges"):
        fold_summary(DriftWindows(), bad, CONFIG)


def test_a_summary_without_a_profile_only_moves_the_watermark() -> None:
    bare = _summary(T0, _rows(1)).model_copy(update={"features": {}, "reference": {}})
    out, state = fold_summary(DriftWindows(), bare, CONFIG)
    assert (out, state) == ([], DriftWindows(watermark=T0))


@pytest.mark.parametrize(
    ("window", "grace"),
    [(timedelta(0), timedelta(0)), (timedelta(hours=1), timedelta(seconds=-1))],
)
def test_config_refuses_an_empty_window_or_a_negative_grace(
    window: timedelta, grace: timedelta
) -> None:
    with pytest.raises(ValueError, match="must be a timedelta"):
        DriftWindowConfig(window=window, grace=grace)
