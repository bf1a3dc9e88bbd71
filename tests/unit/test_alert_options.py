"""A rule's own options: direction, metric, service pattern, cooldown, minimum samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stream_app.monitoring.alert_rules import AlertConfig, parse_rules
from stream_app.monitoring.alerts import AlertEngine

T0 = datetime(2026, 3, 2, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _run(
    rules: Mapping[str, Mapping[str, Any]], metric: str, values: Sequence[float]
) -> list[tuple[int, str, str, float, float]]:
    """(minute, kind, severity, value, threshold) of every event, one value a minute."""
    engine = AlertEngine(rules, timedelta(minutes=10))
    rows = []
    for minute, value in enumerate(values):
        for e in engine.observe(T0 + minute * MINUTE, {metric: value}):
            rows.append((minute, e.kind, e.severity, e.value, e.threshold))
    return rows


def test_a_below_rule_fires_as_its_metric_falls_and_keeps_the_lowest_value() -> None:
    rules = {"accuracy": {"warning": 0.8, "critical": 0.7, "direction": "below"}}
    assert _run(rules, "accuracy", [0.9, 0.8, 0.65, 0.75, 0.81]) == [
        (1, "firing", "warning", 0.8, 0.8),  # at the threshold meets it
        (2, "escalated", "critical", 0.65, 0.7),
        (3, "deescalated", "warning", 0.75, 0.8),
        (4, "resolved", "warning", 0.81, 0.8),
    ]
    engine = AlertEngine(rules)
    for minute, value in enumerate([0.75, 0.65, 0.9]):
        engine.observe(T0 + minute * MINUTE, {"accuracy": value})
    assert engine.summary(T0 + 3 * MINUTE).per_rule["accuracy"].worst_value == 0.65


def test_a_rule_that_names_its_metric_reads_it_under_its_own_name() -> None:
    rules = {
        "error_rate": {"warning": 0.05},
        "error_rate_strict": {"warning": 0.01, "metric": "error_rate"},
        "volume_fall_drop": {"warning": 0.5, "metric": "prediction_volume"},
    }
    engine = AlertEngine(rules, volume_trailing=1)
    events = engine.observe(T0, {"error_rate": 0.02, "prediction_volume": 100})
    assert [(e.rule, e.kind, e.value) for e in events] == [("error_rate_strict", "firing", 0.02)]
    events = engine.observe(T0 + MINUTE, {"error_rate": 0.02, "prediction_volume": 40})
    assert [(e.rule, e.kind, e.value) for e in events] == [("volume_fall_drop", "firing", 0.6)]
    assert [e.rule for e in engine.summary(T0 + MINUTE).firing_now] == [
        "error_rate_strict",
        "volume_fall_drop",
    ]


def test_min_samples_keeps_a_rule_clear_until_it_has_judged_that_many_values() -> None:
    rules = {"error_rate": {"warning": 0.05, "min_samples": 3}}
    assert _run(rules, "error_rate", [0.2, 0.2, 0.2, 0.01]) == [
        (2, "firing", "warning", 0.2, 0.05),
        (3, "resolved", "warning", 0.01, 0.05),
    ]
    # Counted across a restart: the count is part of the state.
    engine = AlertEngine(rules)
    engine.observe(T0, {"error_rate": 0.01})
    engine.observe(T0 + MINUTE, {"error_rate": 0.01})
    restarted = AlertEngine.from_dict(engine.to_dict())
    assert restarted.config.rules == engine.config.rules
    assert [e.kind for e in restarted.observe(T0 + 2 * MINUTE, {"error_rate": 0.2})] == ["firing"]


def test_a_rule_with_its_own_cooldown_refires_after_it() -> None:
    # The engine's cooldown is 10 minutes; this rule's is 2.
    rules = {"error_rate": {"warning": 0.05, "cooldown_seconds": 120}}
    assert _run(rules, "error_rate", [0.2, 0.01, 0.2, 0.2, 0.01]) == [
        (0, "firing", "warning", 0.2, 0.05),
        (1, "resolved", "warning", 0.01, 0.05),
        (3, "firing", "warning", 0.2, 0.05),  # minute 2 is within its 2 minutes
        (4, "resolved", "warning", 0.01, 0.05),
    ]
    assert _run({"error_rate": {"warning": 0.05}}, "error_rate", [0.2, 0.01, 0.2, 0.2]) == [
        (0, "firing", "warning", 0.2, 0.05),
        (1, "resolved", "warning", 0.01, 0.05),
    ]


def test_a_service_pattern_must_match_the_whole_name() -> None:
    config = AlertConfig(parse_rules({"error_rate": {"warning": 0.05, "service": "checkout"}}))
    assert [len(config.for_service(s).rules) for s in ("checkout", "checkout-eu", "x")] == [
        1,
        0,
        0,
    ]
    assert config.for_service("checkout") is config


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"warning": 0.7, "critical": 0.8, "direction": "below"},
         r"warning \(0.7\) must be > critical"),
        ({"warning": 1, "direction": "up"}, "direction must be above or below"),
        ({"warning": 1, "metric": ""}, "metric must be a non-empty string"),
        ({"warning": 1, "service": "check(out"}, "service must be a regular expression"),
        ({"warning": 1, "service": 5}, "service must be a regular expression"),
        ({"warning": 1, "cooldown_seconds": 0}, "cooldown must be a timedelta > 0"),
        ({"warning": 1, "cooldown_seconds": "60"}, "cooldown_seconds must be a number"),
        ({"warning": 1, "cooldown_seconds": float("inf")}, "cooldown_seconds must be finite"),
        ({"warning": 1, "cooldown_seconds": 8 * 86_400},
         "retention must be a timedelta >= rule 'x'"),
        ({"warning": 1, "min_samples": 0}, "min_samples must be an integer >= 1"),
        ({"warning": 1, "min_samples": 2.0}, "min_samples must be an integer >= 1"),
    ],
)  # fmt: skip
def test_invalid_options_are_refused_naming_the_rule(
    entry: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        AlertEngine({"x": entry})
    assert type(info.value) is ValueError
    assert "rule 'x'" in str(info.value)
