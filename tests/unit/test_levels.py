"""Drift severity and alerts firing for /metrics, from the followers' state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stream_app.monitoring.alert_rules import AlertConfig, parse_rules
from stream_app.monitoring.alert_state import step
from stream_app.monitoring.alerts import AlertState
from stream_app.monitoring.levels import alerts_firing, drift_levels

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = AlertConfig(
    parse_rules({"error_rate": {"warning": 0.05, "critical": 0.1}, "ab_srm": {"critical": 1}})
)


@pytest.mark.parametrize(
    ("latest", "expected"),
    [
        ({}, {}),
        ({"m": {"severity": "none"}}, {}),  # a report without features
        ({"m": {"features": {"age": {"severity": "warning"}}}}, {("m", "age"): 1}),
        ({"m": {"features": {"age": {"severity": "bogus"}}}}, {("m", "age"): 0}),
        ({"m": {"features": {"age": "critical"}}}, {("m", "age"): 0}),  # not a verdict
        (
            {"a": {"features": {"x": {"severity": "critical"}}},
             "b": {"features": {"x": {"severity": "none"}}}},
            {("a", "x"): 2, ("b", "x"): 0},
        ),
    ],
)  # fmt: skip
def test_drift_levels(latest: dict[str, Any], expected: dict[tuple[str, str], int]) -> None:
    assert drift_levels(latest) == expected


def _observe(values: list[float]) -> AlertState:
    state = AlertState()
    for i, value in enumerate(values):
        _, state = step(state, T0 + timedelta(minutes=i), {"error_rate": value}, CONFIG)
    return state


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ({}, {}),
        ({"s": [0.01]}, {}),
        ({"s": [0.07]}, {("error_rate", "warning"): 1}),
        ({"s": [0.07, 0.2]}, {("error_rate", "critical"): 1}),  # escalated: critical only
        ({"s": [0.07, 0.01]}, {}),  # resolved
        ({"s": [0.2], "t": [0.06], "u": [0.3]},
         {("error_rate", "critical"): 2, ("error_rate", "warning"): 1}),
    ],
)  # fmt: skip
def test_alerts_firing_counts_open_episodes_and_zero_for_every_severity_of_a_rule(
    services: dict[str, list[float]], expected: dict[tuple[str, str], int]
) -> None:
    states = {name: _observe(values) for name, values in services.items()}
    zero = {("ab_srm", "critical"): 0, ("error_rate", "critical"): 0, ("error_rate", "warning"): 0}
    assert alerts_firing(states, CONFIG) == {**zero, **expected}
