"""One message per topic contract, as the app (or upstream, for the inputs) writes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from schemas.alerts import AlertMessage
from schemas.events import (
    FieldError,
    Outcome,
    Prediction,
    PredictionLog,
    PredictionRequest,
    Rejection,
    ThrottledRequest,
)
from schemas.metrics import AppServiceMetrics
from schemas.registry import RegistryEventMessage
from schemas.reports import (
    ABComparison,
    ABReportMessage,
    DriftReportMessage,
    FeatureDriftVerdict,
)

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)

VERDICT = FeatureDriftVerdict(
    name="age", test="psi+chi2", status="drift", severity="warning", n=240,
    reference_mean=38.0, reference_std=12.0, current_mean=44.5, current_std=11.0,
    z_score=0.5417, statistic=31.2, p_value=0.0004, p_value_raw=0.0001, psi=0.14,
    reasons=("psi=0.14 with p=0.0004 < alpha=0.01",),
)  # fmt: skip
COMPARISON = ABComparison(
    conversion_rate_a=0.1, conversion_rate_b=0.125, n_a=400, n_b=400, conversions_a=40,
    conversions_b=50, difference=0.025, chi2=1.1, p_value=0.29, sequential_p_value=0.8,
    significant=False, decided_by="sequential", latency_mean_a=3.2, latency_mean_b=None,
    latency_p95_a=7.5, latency_p95_b=None, latency_increase_pct=None, srm_p_value=0.9,
    recommendation="continue",
)  # fmt: skip
SAMPLES: dict[str, BaseModel] = {
    "prediction_requests": PredictionRequest(
        request_id="r1",
        client_id="c1",
        user_id="USR1",
        age=30,
        purchase_history=[9.5],
        category_preference="home",
        session_duration_minutes=3.0,
    ),  # fmt: skip
    "requests_invalid": Rejection(
        reason="schema",
        errors=(FieldError(loc="age", message="too small", type="ge"),),
        raw=b'{"age": 3}',
        request_id="r2",
        client_id="c1",
    ),  # fmt: skip
    "requests_throttled": ThrottledRequest(
        request_id="r3",
        client_id="c1",
        remaining=0,
        retry_after_seconds=1.5,
        request={"request_id": "r3", "age": 30},
    ),  # fmt: skip
    "predictions": Prediction(
        request_id="r1",
        model_name="conversion",
        model_version="1.0.0",
        variant="B",
        score=0.75,
        label=1,
        latency_ms=2.5,
        timestamp=T0,
    ),  # fmt: skip
    "prediction_logs": PredictionLog(
        timestamp="2026-03-02T10:00:00.000Z",
        request_id="r1",
        model_name="conversion",
        model_version="1.0.0",
        variant="B",
        input={"age": 30},
        output={"score": 0.75, "label": 1},
        latency_ms=2.5,
    ),  # fmt: skip
    "outcomes": Outcome(request_id="r1", converted=1, timestamp=T0),
    "service_metrics": AppServiceMetrics(
        service="stream-app",
        timestamp=T0,
        latency_p99_ms=12.5,
        error_rate=0.02,
        prediction_volume=480,
        requests=500,
        late_events=0,
    ),  # fmt: skip
    "drift_reports": DriftReportMessage(
        window_id="conversion|1.0.0|abc|2026-03-02T10:00:00+00:00",
        model_name="conversion",
        model_version="1.0.0",
        reference_id="abc",
        batches=12,
        requests=240,
        late_events=3,
        drift_detected=True,
        drifting_features=("age",),
        severity="warning",
        window_start=T0,
        window_end=T0 + HOUR,
        features={"age": VERDICT},
    ),  # fmt: skip
    "ab_reports": ABReportMessage(
        model="conversion",
        experiment="exp-1",
        serving_version="1.0.0",
        challenger_version="1.1.0",
        interval_end=T0 + HOUR,
        late_events=0,
        report=COMPARISON,
    ),  # fmt: skip
    "alerts": AlertMessage(
        kind="firing",
        rule="error_rate",
        severity="warning",
        value=0.07,
        threshold=0.05,
        timestamp=T0,
        started_at=T0,
        fingerprint="f" * 64,
        service="checkout",
    ),  # fmt: skip
    "model_registry": RegistryEventMessage(
        kind="registered",
        name="conversion",
        version="1.0.0",
        at=T0,
        payload={"path": "conversion/1.0.0", "metrics": {"auc": 0.8}},
    ),  # fmt: skip
}
