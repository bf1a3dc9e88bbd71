"""Alert engine: golden 24-hour stream, suppression, restarts, summary, rule checks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.monitoring.alerts import DEFAULT_RULES, AlertEngine, AlertEvent, AlertState

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)

# A day of hourly service metrics: a latency and error incident in the morning, a second
# latency incident in the afternoon during which traffic falls away.
LATENCY_P99_MS = [45, 48, 52, 61, 118, 135, 142, 88, 70, 62, 58, 55,
                  60, 64, 71, 80, 236, 254, 212, 95, 72, 60, 55, 50]  # fmt: skip
ERROR_RATE = [0.010, 0.012, 0.011, 0.015, 0.062, 0.081, 0.134, 0.118,
              0.071, 0.032, 0.018, 0.014, 0.012, 0.011, 0.013, 0.016,
              0.044, 0.050, 0.041, 0.021, 0.015, 0.012, 0.010, 0.011]  # fmt: skip
PREDICTION_VOLUME = [820, 760, 700, 690, 740, 880, 1010, 1150, 1240, 1290, 1310, 1300,
                     1280, 1270, 1290, 1300, 820, 560, 740, 1260, 1230, 1150, 1040,
                     930]  # fmt: skip


def _day() -> list[tuple[datetime, dict[str, float]]]:
    return [
        (
            T0 + h * HOUR,
            {
                "latency_p99_ms": LATENCY_P99_MS[h],
                "error_rate": ERROR_RATE[h],
                "prediction_volume": PREDICTION_VOLUME[h],
            },
        )
        for h in range(24)
    ]


def _drop(hour: int) -> float:
    mean = sum(PREDICTION_VOLUME[hour - 6 : hour]) / 6
    return (mean - PREDICTION_VOLUME[hour]) / mean


# (hour, kind, rule, severity, value, threshold, started at hour)
GOLDEN = [
    (4, "firing", "latency_p99_ms", "warning", 118, 100, 4),
    (4, "firing", "error_rate", "warning", 0.062, 0.05, 4),
    (6, "escalated", "error_rate", "critical", 0.134, 0.10, 4),
    (7, "resolved", "latency_p99_ms", "warning", 88, 100, 4),
    (8, "deescalated", "error_rate", "warning", 0.071, 0.05, 4),
    (9, "resolved", "error_rate", "warning", 0.032, 0.05, 4),
    (16, "firing", "latency_p99_ms", "critical", 236, 200, 16),
    (16, "firing", "prediction_volume_drop", "warning", _drop(16), 0.3, 16),
    (17, "firing", "error_rate", "warning", 0.050, 0.05, 17),  # exactly at the threshold
    (17, "escalated", "prediction_volume_drop", "critical", _drop(17), 0.5, 16),
    (18, "resolved", "error_rate", "warning", 0.041, 0.05, 17),
    (18, "deescalated", "prediction_volume_drop", "warning", _drop(18), 0.3, 16),
    (19, "resolved", "latency_p99_ms", "critical", 95, 100, 16),
    (19, "resolved", "prediction_volume_drop", "warning", _drop(19), 0.3, 16),
]


def _rows(events: Sequence[AlertEvent]) -> list[tuple[Any, ...]]:
    return [
        (
            (e.timestamp - T0) / HOUR,
            e.kind,
            e.rule,
            e.severity,
            e.value,
            e.threshold,
            (e.started_at - T0) / HOUR,
        )
        for e in events
    ]


def _run(
    engine: AlertEngine, stream: Sequence[tuple[datetime, Mapping[str, float]]]
) -> list[AlertEvent]:
    return [event for at, metrics in stream for event in engine.observe(at, metrics)]


def test_golden_day_with_default_rules() -> None:
    events = _run(AlertEngine(), _day())
    expected = [(*row[:4], pytest.approx(row[4], rel=1e-12), *row[5:]) for row in GOLDEN]
    assert _rows(events) == expected


def test_golden_drop_values_are_the_documented_formula() -> None:
    assert _drop(16) == pytest.approx(0.3652, abs=1e-4)
    assert _drop(17) == pytest.approx(0.5372, abs=1e-4)
    assert _drop(18) == pytest.approx(0.3190, abs=1e-4)


def test_golden_fingerprints_are_per_episode_and_stable() -> None:
    events = _run(AlertEngine(), _day())
    by_episode: dict[tuple[str, datetime], set[str]] = {}
    for e in events:
        by_episode.setdefault((e.rule, e.started_at), set()).add(e.fingerprint)
    assert all(len(prints) == 1 for prints in by_episode.values())
    expected = hashlib.sha256(b"error_rate|2026-03-02T04:00:00+00:00").hexdigest()
    assert events[1].fingerprint == expected
    # The same instant written in another time zone is the same episode.
    other_zone = AlertEngine()
    local = timezone(timedelta(hours=2))
    shifted = [(at.astimezone(local), m) for at, m in _day()]
    assert [e.fingerprint for e in _run(other_zone, shifted)] == [e.fingerprint for e in events]


def test_golden_summary() -> None:
    engine = AlertEngine()
    _run(engine, _day())
    summary = engine.summary(T0 + 23 * HOUR)
    data = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert data["per_rule"] == {
        "latency_p99_ms": {
            "episodes": 2,
            "worst_value": 254.0,
            "firing_seconds": 6 * 3600.0,
            "suppressed": 0,
        },
        "error_rate": {
            "episodes": 2,
            "worst_value": 0.134,
            "firing_seconds": 6 * 3600.0,
            "suppressed": 0,
        },
        "prediction_volume_drop": {
            "episodes": 1,
            "worst_value": pytest.approx(_drop(17), rel=1e-12),
            "firing_seconds": 3 * 3600.0,
            "suppressed": 0,
        },
    }
    assert data["firing_now"] == [] and data["suppressed"] == 0


def test_summary_window_and_firing_now() -> None:
    engine = AlertEngine()
    _run(engine, _day()[:18])  # up to hour 17: latency critical and the drop are firing
    summary = engine.summary(T0 + 17 * HOUR, window=timedelta(hours=3))
    assert summary.per_rule["latency_p99_ms"].episodes == 1  # the morning one is outside
    assert summary.per_rule["latency_p99_ms"].firing_seconds == 3600.0
    assert summary.per_rule["error_rate"].firing_seconds == 0.0
    firing = {(a.rule, a.severity) for a in summary.firing_now}
    assert firing == {
        ("latency_p99_ms", "critical"),
        ("prediction_volume_drop", "critical"),
        ("error_rate", "warning"),
    }


# Ten-minute observations of one rule, cooldown one hour: (minute, error_rate).
FLAPPING = [
    (0, 0.06),  # fires (warning)
    (10, 0.02),  # resolves: the cooldown runs until minute 70
    (20, 0.07),  # back within the cooldown: suppressed, counted
    (30, 0.03),  # clear again
    (40, 0.12),  # back again: suppressed, counted a second time
    (50, 0.12),  # still held: nothing, not counted again
    (60, 0.11),
    (70, 0.12),  # the cooldown is over and the condition holds: fires, as critical
    (80, 0.06),  # deescalates
    (90, 0.01),  # resolves
]


def test_suppression_within_cooldown_then_firing_after_it() -> None:
    engine = AlertEngine({"error_rate": {"warning": 0.05, "critical": 0.10}})
    stream = [(T0 + timedelta(minutes=m), {"error_rate": v}) for m, v in FLAPPING]
    events = _run(engine, stream)
    assert [(e.kind, e.severity, (e.timestamp - T0) / timedelta(minutes=1)) for e in events] == [
        ("firing", "warning", 0),
        ("resolved", "warning", 10),
        ("firing", "critical", 70),
        ("deescalated", "warning", 80),
        ("resolved", "warning", 90),
    ]
    assert events[2].started_at == T0 + timedelta(minutes=70)
    summary = engine.summary(T0 + timedelta(minutes=90))
    assert summary.suppressed == 2
    assert summary.per_rule["error_rate"].episodes == 2
    assert summary.per_rule["error_rate"].worst_value == 0.12
    assert summary.per_rule["error_rate"].firing_seconds == 30 * 60.0


def test_refiring_exactly_at_the_end_of_the_cooldown_is_not_suppressed() -> None:
    engine = AlertEngine({"error_rate": {"warning": 0.05}})
    values = [0.06, 0.01, 0.06]  # resolved at hour 1, back at hour 2 = resolution + cooldown
    events = _run(engine, [(T0 + h * HOUR, {"error_rate": v}) for h, v in enumerate(values)])
    assert [e.kind for e in events] == ["firing", "resolved", "firing"]
    assert engine.summary(T0 + 2 * HOUR).suppressed == 0


def test_volume_drop_needs_history_and_a_positive_mean() -> None:
    engine = AlertEngine(volume_trailing=3)
    early = [(T0 + h * HOUR, {"prediction_volume": v}) for h, v in enumerate([100, 10, 0])]
    assert _run(engine, early) == []  # no history yet, whatever the drop
    engine = AlertEngine(volume_trailing=2)
    zeros = [(T0 + h * HOUR, {"prediction_volume": v}) for h, v in enumerate([0, 0, 0])]
    assert _run(engine, zeros) == []  # the trailing mean is 0: no drop is defined
    volumes = [0, 0, 10, 10, 4]  # hour 3 rises against a mean of 5; hour 4 drops by 60 %
    stream = [(T0 + h * HOUR, {"prediction_volume": v}) for h, v in enumerate(volumes)]
    events = _run(AlertEngine(volume_trailing=2), stream)
    assert [(e.kind, e.severity, e.value, e.timestamp) for e in events] == [
        ("firing", "critical", pytest.approx(0.6), T0 + 4 * HOUR)
    ]


def test_generic_metric_names_are_rules_too() -> None:
    engine = AlertEngine(
        {"drift_score": {"warning": 2.0, "critical": 4.0}, "ab_srm": {"critical": 1}}
    )
    events = engine.observe(T0, {"drift_score": 4.5, "ab_srm": 1.0, "unrelated": 99.0})
    assert [(e.rule, e.kind, e.severity) for e in events] == [
        ("drift_score", "firing", "critical"),
        ("ab_srm", "firing", "critical"),
    ]
    events = engine.observe(T0 + HOUR, {"drift_score": 1.0, "ab_srm": 0.0})
    assert [(e.rule, e.kind, e.threshold) for e in events] == [
        ("drift_score", "resolved", 2.0),
        ("ab_srm", "resolved", 1.0),
    ]


def test_missing_or_nan_metric_leaves_the_rule_as_it_was() -> None:
    engine = AlertEngine({"error_rate": {"warning": 0.05}})
    engine.observe(T0, {"error_rate": 0.2})
    assert engine.observe(T0 + HOUR, {}) == []
    assert engine.observe(T0 + 2 * HOUR, {"error_rate": float("nan")}) == []
    assert [e.kind for e in engine.observe(T0 + 3 * HOUR, {"error_rate": 0.0})] == ["resolved"]


def test_redelivered_or_older_observations_change_nothing() -> None:
    engine = AlertEngine()
    day = _day()
    _run(engine, day[:5])
    state = engine.to_dict()
    assert _run(engine, day[3:5]) == []
    assert engine.to_dict() == state


@pytest.mark.parametrize("split", range(25))
def test_restart_at_any_point_gives_identical_events(split: int) -> None:
    day = _day()
    uninterrupted = AlertEngine()
    expected = _run(uninterrupted, day)
    first = AlertEngine()
    before = _run(first, day[:split])
    restored = AlertEngine.from_dict(json.loads(json.dumps(first.to_dict(), allow_nan=False)))
    after = _run(restored, day[split:])
    assert before + after == expected
    now = T0 + 23 * HOUR
    assert restored.summary(now) == uninterrupted.summary(now)


observations = st.lists(
    st.tuples(
        st.integers(1, 90),  # minutes since the previous observation
        st.floats(0.0, 0.2),
        st.floats(0.0, 2_000.0),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(rows=observations, cut=st.integers(0, 40))
def test_restart_property(rows: list[tuple[int, float, float]], cut: int) -> None:
    at, stream = T0, []
    for minutes, error_rate, volume in rows:
        at += timedelta(minutes=minutes)
        stream.append((at, {"error_rate": error_rate, "prediction_volume": volume}))
    expected = _run(AlertEngine(volume_trailing=3), stream)
    first = AlertEngine(volume_trailing=3)
    before = _run(first, stream[:cut])
    restored = AlertEngine.from_dict(json.loads(json.dumps(first.to_dict())))
    assert before + _run(restored, stream[cut:]) == expected
    # The lifecycle holds per rule: firing opens, resolved closes, nothing in between repeats.
    active: dict[str, str] = {}
    for event in expected:
        if event.kind == "firing":
            assert event.rule not in active
            active[event.rule] = event.severity
        else:
            assert event.rule in active
            assert event.kind == "resolved" or event.severity != active[event.rule]
            active[event.rule] = event.severity
            if event.kind == "resolved":
                del active[event.rule]


def test_retention_forgets_old_episodes() -> None:
    engine = AlertEngine({"error_rate": {"warning": 0.05}}, retention=timedelta(hours=2))
    stream = [(T0 + h * HOUR, {"error_rate": v}) for h, v in enumerate([0.1, 0.0, 0.0, 0.0, 0.0])]
    _run(engine, stream)
    assert engine.state.closed == ()
    assert (
        engine.summary(T0 + 4 * HOUR, window=timedelta(days=1)).per_rule["error_rate"].episodes == 0
    )


def test_events_and_state_are_json_safe() -> None:
    engine = AlertEngine()
    events = _run(engine, _day()[:17])
    for event in events:
        data = json.loads(json.dumps(event.to_dict(), allow_nan=False))
        assert set(data) == {
            "kind",
            "rule",
            "severity",
            "value",
            "threshold",
            "timestamp",
            "started_at",
            "fingerprint",
        }
    json.dumps(engine.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("rules", "kwargs", "message"),
    [
        ({"x": {"warning": 2, "critical": 1}}, {}, r"warning \(2.0\) must be < critical \(1.0\)"),
        ({"x": {"warning": 1, "critical": 1}}, {}, r"must be < critical"),
        ({"x": {"info": 1}}, {}, r"unknown key 'info'; allowed: warning, critical, direction"),
        ({"x": {}}, {}, "needs a warning and/or a critical threshold"),
        ({"x": {"warning": float("nan")}}, {}, "must be finite"),
        ({"x": {"warning": True}}, {}, "must be a number"),
        ({"": {"warning": 1}}, {}, "non-empty strings"),
        ({"x": {"warning": 1}}, {"cooldown": timedelta(0)}, "cooldown must be a timedelta > 0"),
        (
            {"x": {"warning": 1}},
            {"cooldown": timedelta(hours=-1)},
            "cooldown must be a timedelta > 0",
        ),
        ({"x": {"warning": 1}}, {"volume_trailing": 0}, "volume_trailing must be an integer >= 1"),
        ({"x": {"warning": 1}}, {"volume_trailing": 2.5}, "volume_trailing must be an integer"),
        ({"x": {"warning": 1}}, {"volume_trailing": "6"}, "volume_trailing must be an integer"),
        ({"x": 5}, {}, r"rule 'x': thresholds must be a mapping like \{'warning': 100"),
        ({"x": [100, 200]}, {}, r"rule 'x': thresholds must be a mapping"),
        ({"x": "warning"}, {}, r"rule 'x': thresholds must be a mapping"),
        ([("x", {"warning": 1})], {}, "rules must be a mapping of rule name to thresholds"),
        ({"x": {"warning": 1}}, {"cooldown": 3600}, r"cooldown must be a timedelta > 0, got 3600"),
        ({"x": {"warning": 1}}, {"cooldown": None}, "cooldown must be a timedelta > 0"),
        ({"x": {"warning": 1}}, {"retention": 7}, "retention must be a timedelta >= cooldown"),
        (
            {"x": {"warning": 1}},
            {"retention": timedelta(minutes=5)},
            "retention must be a timedelta >= cooldown",
        ),
    ],
)
def test_invalid_configuration(
    rules: Mapping[str, Mapping[str, float]], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        AlertEngine(rules, **kwargs)
    assert type(info.value) is ValueError  # not a TypeError from deeper down


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AlertEngine().observe(datetime(2026, 3, 2), {"error_rate": 0.2})


def test_summary_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window must be > 0"):
        AlertEngine().summary(T0, window=timedelta(0))


def test_state_alone_restores_an_engine_built_from_settings() -> None:
    """The agent's pattern: rules from settings, state from its table."""
    day = _day()
    first = AlertEngine()
    before = _run(first, day[:12])
    stored = json.loads(json.dumps(first.state.to_dict()))
    restored = AlertEngine(DEFAULT_RULES, state=AlertState.from_dict(stored))
    assert before + _run(restored, day[12:]) == _run(AlertEngine(), day)


def test_a_shorter_trailing_length_after_restart_uses_the_latest_history() -> None:
    rules = {"prediction_volume_drop": {"warning": 0.3}}
    first = AlertEngine(rules, volume_trailing=4)
    _run(first, [(T0 + h * HOUR, {"prediction_volume": v}) for h, v in enumerate([10, 10, 40, 40])])
    shorter = AlertEngine(rules, volume_trailing=2, state=first.state)
    events = shorter.observe(T0 + 4 * HOUR, {"prediction_volume": 20})  # mean of 40, 40
    assert [(e.kind, e.value) for e in events] == [("firing", 0.5)]


def test_an_alert_firing_at_now_is_an_episode_of_the_summary() -> None:
    engine = AlertEngine()
    engine.observe(T0, {"error_rate": 0.2})
    summary = engine.summary(T0)
    assert summary.per_rule["error_rate"].episodes == 1
    assert summary.per_rule["error_rate"].firing_seconds == 0.0
    assert [a.rule for a in summary.firing_now] == ["error_rate"]
