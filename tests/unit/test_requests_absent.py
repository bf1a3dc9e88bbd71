"""The built-in ``requests_absent`` rule: requests gone to zero, or to a small fraction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.monitoring.alert_catalog import REQUESTS_ABSENT, pipeline_rules
from stream_app.monitoring.alert_rules import parse_rules
from stream_app.monitoring.alerts import AlertEngine, AlertState

T0 = datetime(2026, 3, 2, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _run(requests: list[float], fraction: float = 0.1) -> list[tuple[int, str, float]]:
    """(window index, kind, value) of every requests_absent event over the windows."""
    engine = AlertEngine(pipeline_rules(0.5, fraction), timedelta(minutes=5))
    out = []
    for i, count in enumerate(requests):
        for event in engine.observe(T0 + i * MINUTE, {"requests": count}):
            assert (event.rule, event.severity) == (REQUESTS_ABSENT, "critical")
            out.append((i, event.kind, round(event.value, 9)))
    return out


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        # Zero after traffic fires at once (one earlier window is history enough).
        ([50, 0], [(1, "firing", 1.0)]),
        # Traffic back resolves it; the silent windows did not lower the mean (50).
        ([50, 0, 0, 0, 40], [(1, "firing", 1.0), (4, "resolved", 0.2)]),
        # At or below a tenth of the trailing mean (40, 60 -> 50): 5 fires, 6 does not.
        ([40, 60, 6], []),
        ([40, 60, 5], [(2, "firing", 0.9)]),
        # Zero with no traffic before it is not a drop: nothing to compare with.
        ([0, 0, 0], []),
        ([0, 0, 30, 0], [(3, "firing", 1.0)]),
        # Held while still absent; one window just above the fraction resolves it.
        ([100, 0, 0, 11], [(1, "firing", 1.0), (3, "resolved", 0.89)]),
        # A low window stays in the history (only zeros are left out) and lowers the mean.
        ([100, 0, 5, 0, 11], [(1, "firing", 1.0), (4, "resolved", round(41.5 / 52.5, 9))]),
    ],
)  # fmt: skip
def test_requests_absent_fires_at_zero_or_a_fraction_and_resolves(
    requests: list[float], expected: list[tuple[int, str, float]]
) -> None:
    assert _run(requests) == expected


def test_a_lasting_lower_level_becomes_the_new_normal_after_the_trailing_windows() -> None:
    # trailing = 6: at window 7 the mean is of (300, 10 x5), 350 / 6, and 10 is above
    # a tenth of it; until then every 10 was at most a tenth of a mean holding both 300s.
    counts = [300.0, 300.0, *[10.0] * 6]
    assert _run(counts) == [
        (2, "firing", round(29 / 30, 9)),
        (7, "resolved", round(1 - 60 / 350, 9)),
    ]


def test_a_fraction_of_zero_fires_only_at_zero() -> None:
    assert _run([100, 1, 0, 3], fraction=0.0) == [
        (2, "firing", 1.0),
        (3, "resolved", round(47.5 / 50.5, 9)),  # the mean of 100 and 1
    ]
    assert pipeline_rules(0.5, 0.0)[REQUESTS_ABSENT] == {"critical": 1.0}


def test_seeded_traffic_with_two_outages() -> None:
    rng = np.random.default_rng(16)
    counts = [float(c) for c in rng.poisson(200, 30)]
    counts[10:13] = [0.0, 0.0, 0.0]  # an outage of three windows
    counts[20:22] = [0.0, 0.0]
    # The steady windows never come near a tenth of their mean: only the outages fire,
    # each once, and each resolves at the first window with traffic again.
    kinds = [(i, kind) for i, kind, _ in _run(counts)]
    assert kinds == [(10, "firing"), (13, "resolved"), (20, "firing"), (22, "resolved")]


def test_the_history_of_an_absent_rule_survives_a_restart() -> None:
    engine = AlertEngine(pipeline_rules(0.5), timedelta(minutes=5))
    engine.observe(T0, {"requests": 80.0})
    state = AlertState.from_dict(engine.state.to_dict())
    assert state.trailing[REQUESTS_ABSENT] == (80.0,)
    restarted = AlertEngine(pipeline_rules(0.5), timedelta(minutes=5), state=state)
    [event] = restarted.observe(T0 + MINUTE, {"requests": 0.0})
    assert (event.kind, event.value, event.threshold) == ("firing", 1.0, 0.9)


def test_services_without_the_metric_are_left_alone() -> None:
    engine = AlertEngine(pipeline_rules(0.5), timedelta(minutes=5))
    for i in range(5):
        assert engine.observe(T0 + i * MINUTE, {"latency_p99_ms": 10.0}) == []
    assert REQUESTS_ABSENT not in engine.state.rules


def test_absent_rules_are_named_after_their_metric() -> None:
    [rule] = parse_rules({"requests_absent": {"critical": 0.9}})
    assert (rule.is_absent, rule.is_drop, rule.metric) == (True, False, "requests")
    [plain] = parse_rules({"_absent": {"critical": 0.9}})
    assert (plain.is_absent, plain.metric) == (False, "_absent")


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_the_fraction_is_checked(fraction: float) -> None:
    with pytest.raises(ValueError, match=r"volume_absent_fraction must be in \[0, 1\)"):
        pipeline_rules(0.5, fraction)
    with pytest.raises(ConfigError, match="STREAM_VOLUME_ABSENT_FRACTION"):
        load_settings({"STREAM_VOLUME_ABSENT_FRACTION": str(fraction)})


def test_the_setting_defaults_to_a_tenth() -> None:
    assert load_settings({}).volume_absent_fraction == 0.1
