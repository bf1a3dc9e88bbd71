"""The demo report: folding hand-built output messages, and the exact text it prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import encode
from schemas.events import FieldError, Prediction, PredictionRequest, Rejection, ThrottledRequest
from stream_app.demo.report import ReportBuilder
from stream_app.demo.report_text import MEASURED_HEADER, RunFacts, render_report, stable_part
from stream_app.monitoring.ab_schedule import Experiment, IntervalReport
from stream_app.monitoring.ab_test import ABReport
from stream_app.monitoring.alert_catalog import alert_message
from stream_app.monitoring.alert_state import AlertEvent, fingerprint
from stream_app.monitoring.drift_report import DriftReport, FeatureDrift
from stream_app.monitoring.drift_windows import ClosedDriftWindow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _prediction(i: int, variant: str) -> bytes:
    version = "1.0.0" if variant == "A" else "1.1.0"
    p = Prediction(
        request_id=f"r{i}",
        model_name="conversion",
        model_version=version,
        variant=variant,  # type: ignore[arg-type]
        score=0.4,
        label=0,
        latency_ms=1.5 + i,
        timestamp=T0,
    )
    return p.model_dump_json().encode()


def _rejection(reason: str, request_id: str | None) -> bytes:
    r = Rejection(
        reason=reason,  # type: ignore[arg-type]
        errors=(FieldError(loc="age", message="too low", type="greater_than_equal"),),
        raw=b"{}",
        request_id=request_id,
    )
    return r.model_dump_json().encode()


def _throttled(i: int, client: str) -> bytes:
    request = PredictionRequest(
        request_id=f"t{i}",
        client_id=client,
        user_id="USR1",
        age=30,
        purchase_history=[10.0],
        category_preference="home",
        session_duration_minutes=5.0,
    )
    return (
        ThrottledRequest(
            request_id=request.request_id,
            client_id=request.client_id,
            remaining=0,
            retry_after_seconds=3.0,
            request={"request_id": request.request_id, "client_id": request.client_id},
        )
        .model_dump_json()
        .encode()
    )


def _drift(hour: int, severity: str) -> bytes:
    status = "ok" if severity == "none" else "drift"
    features = {
        "age": FeatureDrift("age", "psi+chi2", status, severity, 500, z_score=1.2, psi=0.4),  # type: ignore[arg-type]
        "session_duration_minutes": FeatureDrift(
            "session_duration_minutes", "psi+chi2", "ok", "none", 500, psi=0.01
        ),
    }
    start = T0 + timedelta(hours=hour)
    end = start + timedelta(hours=1)
    report = DriftReport(features, start.isoformat(), end.isoformat())
    window = ClosedDriftWindow("conversion", "1.0.0", "ref", start, end, 10, 500, 0, report)
    return encode(window.to_message())


def _ab(n_a: int, n_b: int, recommendation: str, end: datetime) -> bytes:
    report = ABReport(
        conversion_rate_a=0.3,
        conversion_rate_b=0.36,
        n_a=n_a,
        n_b=n_b,
        conversions_a=round(n_a * 0.3),
        conversions_b=round(n_b * 0.36),
        difference=0.06,
        chi2=40.2,
        p_value=2.3e-10,
        sequential_p_value=1e-6,
        significant=True,
        decided_by="chi2",
        latency_mean_a=2.0,
        latency_mean_b=2.5,
        latency_p95_a=3.0,
        latency_p95_b=3.5,
        latency_increase_pct=25.0,
        srm_p_value=0.41,
        recommendation=recommendation,  # type: ignore[arg-type]
    )
    experiment = Experiment("exp", "1.0.0", "1.1.0")
    interval = IntervalReport("conversion", experiment, end.timestamp(), report, 0)
    return encode(interval.to_message())


def _alert(kind: str, minutes: int, severity: str, value: float) -> bytes:
    started = T0 + timedelta(hours=16)
    event = AlertEvent(
        kind=kind,  # type: ignore[arg-type]
        rule="latency_p99_ms",
        severity=severity,  # type: ignore[arg-type]
        value=value,
        threshold=100.0 if severity == "warning" else 200.0,
        timestamp=started + timedelta(minutes=minutes),
        started_at=started,
        fingerprint=fingerprint("latency_p99_ms", started),
    )
    return encode(alert_message("checkout-api", event)[1])


def _metrics(service: str, minute: int, latency: float, error_rate: float) -> bytes:
    stamp = (T0 + timedelta(minutes=minute)).isoformat()
    body = {
        "service": service,
        "timestamp": stamp,
        "latency_p99_ms": latency,
        "error_rate": error_rate,
    }
    return json.dumps(body).encode()


def _outputs() -> list[tuple[str, bytes | None, bytes]]:
    out: list[tuple[str, bytes | None, bytes]] = []
    out += [("predictions", f"r{i}".encode(), _prediction(i, "AB"[i % 2])) for i in range(7)]
    out.append(("predictions", b"r3", _prediction(3, "B")))  # a replay
    out += [
        ("requests_invalid", None, _rejection("malformed_json", None)),
        ("requests_invalid", None, _rejection("malformed_json", None)),
        ("requests_invalid", b"c1", _rejection("schema", "s1")),
        ("requests_invalid", b"c1", _rejection("schema", "s1")),  # a replay
        ("requests_invalid", b"c2", _rejection("too_large", None)),
        ("requests_invalid", b"o1", _rejection("unknown_outcome", "o1")),
    ]
    out += [("requests_throttled", b"c9", _throttled(i, "client-00009")) for i in range(3)]
    out.append(("requests_throttled", b"c8", _throttled(3, "client-00008")))
    out += [("drift_reports", b"conversion", _drift(h, "none")) for h in (10, 11)]
    out += [("drift_reports", b"conversion", _drift(h, "critical")) for h in (12, 13)]
    out.append(("ab_reports", b"conversion", _ab(900, 880, "use_b", T0 + timedelta(hours=23))))
    out.append(("ab_reports", b"conversion", _ab(400, 420, "continue", T0 + timedelta(hours=12))))
    alerts = [
        ("firing", 0, "warning", 150.0),
        ("escalated", 5, "critical", 260.5),
        ("resolved", 60, "warning", 52.0),
    ]
    for kind, minutes, severity, value in alerts:
        alert = _alert(kind, minutes, severity, value)
        out.append(("alerts", json.loads(alert)["fingerprint"].encode(), alert))
    out.append(("alerts", b"x", _alert("firing", 0, "warning", 150.0)))  # a replay
    out += [
        ("service_metrics", b"checkout-api", _metrics("checkout-api", 0, 55.0, 0.004)),
        ("service_metrics", b"checkout-api", _metrics("checkout-api", 965, 412.5, 0.011)),
        ("service_metrics", b"conversion", _metrics("conversion", 1, 7.5, 0.02)),
        ("alerts", None, b"[1, 2]"),
        ("outcomes", b"r1", b"not an output topic"),
    ]
    return out


EXPECTED = """\
stream-app demo report
======================
events in: 35 (prediction_requests 20, outcomes 12, service_metrics 3)
predictions: 7 (A 4, B 3)
  by model version: 1.0.0 4, 1.1.0 3
invalid: 4 (malformed_json 2, schema 1, too_large 1)
throttled: 4 (client-00008 1, client-00009 3)
requests accounted for: 15 of 20
outcomes for unknown requests: 1
replayed outputs recognised and counted once: 3
unreadable output messages: alerts 1

drift: 4 windows reported, 2 with drift
  age: critical, first in the window from 2026-01-01 12:00, 2 windows

A/B: final of 2 reports (up to 2026-01-01 23:00)
  A: 900 exposed, 270 converted (30.00%)
  B: 880 exposed, 317 converted (36.00%)
  p-value (chi2): 2.3e-10; significant: True
  sample ratio check p-value: 0.41
  recommendation: use_b

alerts: 1 fired, 1 resolved, 0 still firing
  2026-01-01 16:00  firing      latency_p99_ms [checkout-api] warning value 150 (threshold 100)
  2026-01-01 16:05  escalated   latency_p99_ms [checkout-api] critical value 260.5 (threshold 200)
  2026-01-01 17:00  resolved    latency_p99_ms [checkout-api] warning value 52 (threshold 100)

service metrics: 2 services
  checkout-api: 2 points, latency p99 peak 412.5 ms at 2026-01-01 16:05, error rate max 1.10%
  conversion: 1 point, error rate max 2.00%

"""


def _report(outputs: list[tuple[str, bytes | None, bytes]], wall: float = 2.0) -> str:
    builder = ReportBuilder()
    for topic, key, value in outputs:
        builder.add(topic, key, value)
    sent = {"prediction_requests": 20, "outcomes": 12, "service_metrics": 3}
    return render_report(builder.summary(), RunFacts(sent, wall, frozenset({"conversion"})))


def test_the_report_text_for_hand_built_outputs() -> None:
    text = _report(_outputs())
    assert stable_part(text) == EXPECTED
    measured = text.partition(MEASURED_HEADER)[2]
    assert "throughput: 18 events/s (35 events in 2.0 s)" in measured
    assert "scoring latency B: mean 2.50 ms, p95 3.50 ms" in measured
    assert "latency increase B over A: 25.0 %" in measured
    assert "conversion latency p99 peak: 7.5 ms" in measured


def test_order_within_a_topic_and_wall_time_leave_the_stable_part_alone() -> None:
    outputs = _outputs()
    shuffled = sorted(outputs, key=lambda item: (item[0], item[2][::-1]))
    assert stable_part(_report(shuffled, wall=9.0)) == stable_part(_report(outputs))
    assert _report(shuffled, wall=9.0) != _report(outputs)


def test_an_empty_run_still_renders() -> None:
    text = stable_part(_report([]))
    assert "predictions: 0\n" in text
    assert "A/B: no report" in text
    assert "alerts: 0 fired, 0 resolved, 0 still firing" in text


@pytest.mark.parametrize(
    "value",
    [
        # A bare or wrapped report of another shape is not guessed at: it is unreadable.
        {"drifting_features": ["age"], "severity": "warning", "window_start": "w1"},
        {"report": {"drifting_features": ["age"], "severity": "warning"}, "window": 5},
        json.loads(_drift(10, "critical")) | {"severity": "severe"},
    ],
)
def test_a_drift_report_its_contract_refuses_is_counted_unreadable(value: dict[str, Any]) -> None:
    builder = ReportBuilder()
    builder.add("drift_reports", b"m", json.dumps(value).encode())
    builder.add("drift_reports", b"m", _drift(12, "warning"))
    summary = builder.summary()
    assert dict(summary.unreadable) == {"drift_reports": 1}
    assert summary.drift_windows == 1
    [finding] = summary.drift_found
    assert (finding.window_start, finding.features, finding.severity) == (
        "2026-01-01T12:00:00+00:00",
        ("age",),
        "warning",
    )


def test_a_drift_window_read_twice_is_one_window_and_one_replay() -> None:
    builder = ReportBuilder()
    for _ in range(2):
        builder.add("drift_reports", b"m", _drift(12, "critical"))
    summary = builder.summary()
    assert (summary.drift_windows, summary.replayed) == (1, 1)
    assert summary.drift_last_end == "2026-01-01T13:00:00+00:00"
