"""The pipeline's alert rules, absent metrics, service-qualified fingerprints, the overview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream_app.monitoring.alert_catalog import (
    alert_message,
    alerts_overview,
    pipeline_rules,
    service_fingerprint,
)
from stream_app.monitoring.alerts import AlertEngine, AlertState

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _engine() -> AlertEngine:
    return AlertEngine(pipeline_rules(0.5), timedelta(minutes=30))


@pytest.mark.parametrize(
    ("metric", "values", "expected"),
    [
        ("drift_severity", [0, 1, 2, 0], [("firing", "warning"), ("escalated", "critical"),
                                          ("resolved", "critical")]),
        ("drift_severity", [2, 2, 0], [("firing", "critical"), ("resolved", "critical")]),
        ("ab_srm", [0, 1, 1, 0], [("firing", "critical"), ("resolved", "critical")]),
        ("ab_latency_increase", [0.2, 0.49, 0.5, 0.8, 0.1],
         [("firing", "warning"), ("resolved", "warning")]),
    ],
)  # fmt: skip
def test_drift_and_ab_guardrail_rules(
    metric: str, values: list[float], expected: list[tuple[str, str]]
) -> None:
    engine = _engine()
    events = []
    for i, value in enumerate(values):
        events += engine.observe(T0 + i * HOUR, {metric: value})
    assert [(e.kind, e.severity) for e in events] == expected
    assert {e.rule for e in events} == {metric}


def test_an_observation_without_a_rules_metric_leaves_that_rule_alone() -> None:
    engine = _engine()
    assert [e.kind for e in engine.observe(T0, {"error_rate": 0.2})] == ["firing"]
    # Drift observations carry no error rate: the error alert neither resolves nor repeats.
    assert engine.observe(T0 + HOUR, {"drift_severity": 0.0}) == []
    assert engine.observe(T0 + 2 * HOUR, {"latency_p99_ms": 10.0, "requests": 5.0}) == []
    [firing] = engine.summary(T0 + 2 * HOUR).firing_now
    assert (firing.rule, firing.severity) == ("error_rate", "critical")
    assert [e.kind for e in engine.observe(T0 + 3 * HOUR, {"error_rate": 0.0})] == ["resolved"]


def test_the_latency_guardrail_follows_the_setting() -> None:
    assert pipeline_rules(1.5)["ab_latency_increase"] == {"warning": 1.5}
    with pytest.raises(ValueError, match="must be > 0"):
        pipeline_rules(0.0)


def test_fingerprints_are_per_service_and_shared_by_an_episodes_events() -> None:
    engine = _engine()
    fired = engine.observe(T0, {"error_rate": 0.07})
    escalated = engine.observe(T0 + HOUR, {"error_rate": 0.2})
    keys = {alert_message("checkout", e)[0] for e in fired + escalated}
    assert keys == {service_fingerprint("checkout", "error_rate", T0)}
    assert service_fingerprint("search", "error_rate", T0) not in keys
    key, value = alert_message("checkout", fired[0])
    assert value.model_dump(mode="json") == {
        **fired[0].to_dict(),
        "service": "checkout",
        "fingerprint": key,
    }


def test_the_overview_lists_firing_alerts_across_services_oldest_first() -> None:
    checkout, search, quiet = _engine(), _engine(), _engine()
    search.observe(T0, {"latency_p99_ms": 300.0})
    checkout.observe(T0 + HOUR, {"error_rate": 0.07})
    quiet.observe(T0, {"error_rate": 0.01})
    states = {"checkout": checkout.state, "search": search.state, "quiet": quiet.state,
              "new": AlertState()}  # fmt: skip
    view = alerts_overview(states, checkout.config, timedelta(hours=24))
    assert [(a["service"], a["rule"], a["severity"]) for a in view["firing_now"]] == [
        ("search", "latency_p99_ms", "critical"),
        ("checkout", "error_rate", "warning"),
    ]
    assert sorted(view["services"]) == ["checkout", "quiet", "search"]
    assert view["services"]["quiet"]["firing_now"] == []
    assert view["firing_now"][0]["fingerprint"] == service_fingerprint(
        "search", "latency_p99_ms", T0
    )
