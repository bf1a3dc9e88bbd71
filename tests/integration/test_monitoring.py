"""Drift windows, the app's own metrics and alerts on the real broker, through a worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.monitor import BatchSummary, RequestCounted
from stream_app.config import load_settings
from stream_app.inference.features import CATEGORICAL_DRIFT_COLUMN, drift_columns_from_matrix
from stream_app.lifecycle.demo_model import demo_data
from stream_app.localkafka import BrokerInfo
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.alert_catalog import pipeline_rules
from stream_app.monitoring.alerts import AlertEngine
from stream_app.monitoring.sketch import QuantileSketch
from stream_app.monitoring.stats import ReferenceProfile, WindowStats
from stream_app.topics import internal_topic_names, topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
MODEL = b"conversion"


def _names(run_id: str, app_id: str) -> dict[str, str]:
    settings = load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id)
    return {**topic_names(settings), **internal_topic_names(settings)}


def _settings(app_id: str, partitions: int = 1) -> dict[str, str]:
    return {
        "STREAM_APP_ID": app_id,
        "STREAM_PARTITIONS": str(partitions),
        "STREAM_STORE": "memory://",
        "STREAM_METRICS_WINDOW_SECONDS": "60",
        "STREAM_DRIFT_WINDOW_SECONDS": "60",
        "STREAM_WINDOW_GRACE_SECONDS": "0",
    }


def _summary(
    at: datetime,
    rows: np.ndarray,
    profile: ReferenceProfile,
    latencies: Sequence[float] = (),
    failed: int = 0,
) -> bytes:
    stats = WindowStats.empty(profile).update(drift_columns_from_matrix(rows))
    counters = ABCounters()
    counters.record_exposures(list(latencies) or [1.0] * len(rows))
    summary = BatchSummary(
        model_name="conversion",
        bucket_start=at.replace(second=0, microsecond=0),
        first_event=at,
        last_event=at,
        serving_version="1.0.0",
        scored=len(rows),
        failed=failed,
        variants={"A": counters.to_dict()},
        features=stats.to_dict(),
        reference=profile.to_dict(),
    )
    return summary.model_dump_json().encode()


def _counted(kind: str, at: datetime) -> bytes:
    return RequestCounted(kind=kind, timestamp=at).model_dump_json().encode()  # type: ignore[arg-type]


def _page(
    worker: WorkerProcess, path: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The worker's page once ``ready`` holds for it (its follower may lag the topic)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = worker.get(path)
        if page is not None and page["caught_up"] and ready(page):
            return page
        time.sleep(0.25)
    raise AssertionError(f"{path} never got ready: {worker.get(path)}\n{worker.log_tail()}")


def _values(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


async def test_drift_reports_name_the_shifted_feature_and_feed_the_alerts(
    kafka_broker: BrokerInfo, start_worker: Callable[..., WorkerProcess], run_id: str
) -> None:
    app_id = f"drift-{run_id}"
    names = _names(run_id, app_id)
    worker = start_worker(_settings(app_id), wait_topics={names["monitor_events"]: 1})
    training = demo_data(4000, seed=0).features
    profile = ReferenceProfile.from_data(
        drift_columns_from_matrix(training), categorical=(CATEGORICAL_DRIFT_COLUMN,)
    )
    reference = demo_data(1200, seed=1).features
    shifted = demo_data(1200, seed=2, shift={"age": 15}).features
    events = [
        # Minute 0: reference traffic in four batches; minute 1: age shifted by 15 years.
        *(_summary(T0 + timedelta(seconds=10 * i), part, profile) for i, part in
          enumerate(np.array_split(reference, 4))),
        *(_summary(T0 + timedelta(seconds=60 + 10 * i), part, profile) for i, part in
          enumerate(np.array_split(shifted, 4))),
        # Minute 3 moves the watermark past both windows (grace 0).
        _summary(T0 + timedelta(minutes=3), reference[:5], profile),
    ]  # fmt: skip
    await produce(kafka_broker.bootstrap, names["monitor_events"], [(MODEL, e) for e in events])

    def done(out: dict[str, list[Record]]) -> bool:
        return len(out[names["drift_reports"]]) >= 2 and len(out[names["alerts"]]) >= 2

    out = await read_until(
        kafka_broker.bootstrap, [names["drift_reports"], names["alerts"]], done, timeout=90
    )
    reports = _values(out[names["drift_reports"]])
    assert [(r["window_start"], r["requests"], r["batches"]) for r in reports] == [
        (T0.isoformat(), 1200, 4),
        ((T0 + timedelta(minutes=1)).isoformat(), 1200, 4),
    ]
    assert {r.key for r in out[names["drift_reports"]]} == {MODEL}
    clean, drifted = reports
    assert (clean["severity"], clean["drifting_features"]) == ("none", [])
    assert drifted["severity"] != "none"
    assert drifted["drifting_features"] == ["age"]
    assert drifted["model_version"] == "1.0.0"
    alerts = _values(out[names["alerts"]])
    assert sorted((a["service"], a["rule"], a["kind"]) for a in alerts) == [
        (app_id, "requests_absent", "firing"),  # minute 2 had no requests after 1,200
        (f"{app_id}.drift", "drift_severity", "firing"),
    ]
    page = _page(worker, "/reports/drift", lambda p: "conversion" in p["latest"])
    assert page["latest"]["conversion"]["window_id"] == drifted["window_id"]
    assert [r["window_id"] for r in page["recent"]] == [drifted["window_id"], clean["window_id"]]


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_the_apps_own_metrics_per_window(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    guarantee: str,
) -> None:
    app_id = f"metrics-{run_id}"
    names = _names(run_id, app_id)
    settings = {**_settings(app_id), "STREAM_PROCESSING_GUARANTEE": guarantee}
    start_worker(settings, wait_topics={names["monitor_events"]: 1})
    profile = ReferenceProfile.from_data(
        drift_columns_from_matrix(demo_data(500, seed=0).features),
        categorical=(CATEGORICAL_DRIFT_COLUMN,),
    )
    rows = demo_data(8, seed=3).features
    latencies = [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 40.0]
    events = [
        _summary(T0 + timedelta(seconds=20), rows, profile, latencies, failed=1),
        _counted("rejected", T0 + timedelta(seconds=5)),
        _counted("throttled", T0 + timedelta(seconds=30)),
        _counted("throttled", T0 + timedelta(seconds=50)),
        _counted("rejected", T0 + timedelta(minutes=3)),  # closes minutes 0, 1 and 2
    ]
    await produce(kafka_broker.bootstrap, names["monitor_events"], [(MODEL, e) for e in events])

    def done(out: dict[str, list[Record]]) -> bool:
        return len(out[names["service_metrics"]]) >= 3

    out = await read_until(kafka_broker.bootstrap, [names["service_metrics"]], done, timeout=60)
    records = out[names["service_metrics"]]
    assert {r.key for r in records} == {app_id.encode()}
    sketch = QuantileSketch()
    sketch.add_many(latencies)
    assert _values(records) == [
        {
            "service": app_id,
            "timestamp": (T0 + timedelta(minutes=1)).isoformat(),
            "latency_p99_ms": sketch.quantile(0.99),
            "error_rate": 2 / 12,  # (1 rejected + 1 failed) / (8 + 1 + 1 + 2)
            "prediction_volume": 8,
            "requests": 12,
            "late_events": 0,
        },
        *(
            {
                "service": app_id,
                "timestamp": (T0 + timedelta(minutes=m)).isoformat(),
                "prediction_volume": 0,
                "requests": 0,
                "late_events": 0,
            }
            for m in (2, 3)
        ),
    ]


def _metrics(service: str | None, minute: int, **values: float) -> bytes:
    body: dict[str, Any] = {"timestamp": (T0 + timedelta(minutes=minute)).isoformat(), **values}
    if service is not None:
        body["service"] = service
    return json.dumps(body).encode()


def _alert_kinds(records: Sequence[Record]) -> dict[str, list[tuple[str, str, str]]]:
    by_service: dict[str, list[tuple[str, str, str]]] = {}
    for alert in _values(records):
        row = (alert["rule"], alert["kind"], alert["severity"])
        by_service.setdefault(alert["service"], []).append(row)
    return by_service


async def test_alerts_fire_escalate_and_resolve_once_across_a_restart(
    kafka_broker: BrokerInfo, start_worker: Callable[..., WorkerProcess], run_id: str
) -> None:
    app_id = f"alerts-{run_id}"
    names = _names(run_id, app_id)
    topic, alerts = names["service_metrics"], names["alerts"]
    settings = _settings(app_id, partitions=2)
    first = start_worker(settings, wait_topics={topic: 2})
    checkout = b"checkout"
    await produce(
        kafka_broker.bootstrap,
        topic,
        [
            (checkout, _metrics(None, 0, error_rate=0.01)),
            (checkout, _metrics(None, 1, error_rate=0.07)),  # firing, warning
            (checkout, _metrics(None, 2, error_rate=0.12)),  # escalated, critical
            (None, _metrics("search", 0, latency_p99_ms=250.0)),  # no key: re-keyed; firing
            (checkout, b"{not json"),  # skipped, logged by type
            (None, _metrics(None, 3, error_rate=0.5)),  # no service at all: skipped
        ],
    )
    out = await read_until(kafka_broker.bootstrap, [alerts], lambda o: len(o[alerts]) >= 3)
    assert _alert_kinds(out[alerts]) == {
        "checkout": [("error_rate", "firing", "warning"), ("error_rate", "escalated", "critical")],
        "search": [("latency_p99_ms", "firing", "critical")],
    }
    page = _page(first, "/alerts", lambda p: len(p["firing_now"]) == 2)
    assert [(a["service"], a["rule"], a["severity"]) for a in page["firing_now"]] == [
        ("search", "latency_p99_ms", "critical"),  # oldest first: it started at minute 0
        ("checkout", "error_rate", "critical"),
    ]
    assert {a["fingerprint"] for a in page["firing_now"]} == {
        r.key.decode() for r in out[alerts] if r.key
    }
    assert first.stop() == 0

    second = start_worker(settings, wait_topics={topic: 2})
    await produce(
        kafka_broker.bootstrap,
        topic,
        [
            (checkout, _metrics(None, 2, error_rate=0.12)),  # a redelivery: ignored
            (checkout, _metrics(None, 3, error_rate=0.15)),  # still critical: nothing
            (checkout, _metrics(None, 4, error_rate=0.01)),  # resolved
            (b"search", _metrics(None, 1, latency_p99_ms=50.0)),  # resolved
        ],
    )
    out = await read_until(kafka_broker.bootstrap, [alerts], lambda o: len(o[alerts]) >= 5)
    assert _alert_kinds(out[alerts]) == {
        "checkout": [
            ("error_rate", "firing", "warning"),
            ("error_rate", "escalated", "critical"),
            ("error_rate", "resolved", "critical"),
        ],
        "search": [
            ("latency_p99_ms", "firing", "critical"),
            ("latency_p99_ms", "resolved", "critical"),
        ],
    }
    # One key per episode: every event of an alert shares its fingerprint.
    assert len({r.key for r in out[alerts]}) == 2
    page = _page(second, "/alerts", lambda p: "search" in p["services"] and not p["firing_now"])
    rule = page["services"]["checkout"]["per_rule"]["error_rate"]
    assert (rule["episodes"], rule["worst_value"], rule["firing_seconds"]) == (1, 0.15, 180.0)


async def test_a_rules_file_replaces_the_shipped_rules_in_a_running_worker(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    tmp_path: Path,
) -> None:
    app_id = f"rules-{run_id}"
    names = _names(run_id, app_id)
    topic, alerts = names["service_metrics"], names["alerts"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: latency_p99_ms, warning: 50, critical: 80, service: search}\n"
    )
    worker = start_worker(
        {**_settings(app_id), "STREAM_ALERT_RULES": str(rules)}, wait_topics={topic: 1}
    )
    observations = [
        (0, {"latency_p99_ms": 60.0, "error_rate": 0.5}),  # the file's warning; no error_rate
        (1, {"latency_p99_ms": 90.0, "error_rate": 0.5}),  # the file's critical
        (2, {"latency_p99_ms": 10.0, "error_rate": 0.5}),  # resolved
    ]
    await produce(
        kafka_broker.bootstrap,
        topic,
        [
            (b"checkout", _metrics(None, 0, latency_p99_ms=90.0)),  # not a service it names
            *((b"search", _metrics(None, m, **values)) for m, values in observations),
        ],
    )
    out = await read_until(kafka_broker.bootstrap, [alerts], lambda o: len(o[alerts]) >= 3)
    got = [(a["rule"], a["kind"], a["severity"], a["threshold"]) for a in _values(out[alerts])]
    assert got == [
        ("latency_p99_ms", "firing", "warning", 50.0),
        ("latency_p99_ms", "escalated", "critical", 80.0),
        ("latency_p99_ms", "resolved", "critical", 50.0),
    ]
    # The shipped rules judge the same observations otherwise: error_rate only.
    shipped = AlertEngine(pipeline_rules(0.5))
    events = [e for m, v in observations for e in shipped.observe(T0 + timedelta(minutes=m), v)]
    assert [(e.rule, e.kind, e.severity) for e in events] == [("error_rate", "firing", "critical")]
    page = _page(worker, "/alerts", lambda p: {"checkout", "search"} <= set(p["services"]))
    assert list(page["services"]["search"]["per_rule"]) == ["latency_p99_ms"]
    assert page["services"]["checkout"]["per_rule"] == {}
