"""The monitoring flows install cleanly; their tables recover raw keys; keys find partitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents import build_pipeline
from agents.dashboards import _Views
from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.monitoring.alerts import AlertEngine
from stream_app.partitioner import default_partition


def test_the_pipeline_declares_the_monitoring_agents_and_tables() -> None:
    app = build_pipeline(create_app(load_settings({}, app_id="unit", partitions=3)))
    assert {"drift-windows", "service-metric-windows", "alert-engines"} <= set(app.agents)
    for name in ("drift-windows", "service-metric-windows", "alert-engines"):
        table = app.tables[name]
        # Recovery decodes changelog records with these, not with the table's schema:
        # rows stay the JSON bytes they were written as.
        assert (table.key_serializer, table.value_serializer) == ("raw", "raw")
        assert table.partitions == 3


@pytest.mark.parametrize("partitions", [1, 2, 4, 7])
@pytest.mark.parametrize("key", [b"checkout", b"stream-app", b"stream-app.drift", b"x"])
def test_partition_of_agrees_with_the_producers_partitioner(key: bytes, partitions: int) -> None:
    everything = list(range(partitions))
    assert default_partition(key, partitions) == DefaultPartitioner()(key, everything, everything)


def test_the_dashboard_views_fold_alert_states_and_drift_reports() -> None:
    engine = AlertEngine({"error_rate": {"warning": 0.05}})
    engine.observe(datetime(2026, 3, 2, tzinfo=UTC), {"error_rate": 0.2})
    views = _Views("changelog", max_models=10)

    def apply(topic: str, key: bytes | None, value: bytes | None) -> None:
        views.apply(SimpleNamespace(topic=topic, key=key, value=value))

    state = json.dumps({"offsets": {"metrics:0": 4}, "state": engine.state.to_dict()}).encode()
    apply("changelog", b"checkout", state)
    report = {"window_id": "w1", "model_name": "m", "window_end": "2026-03-02T11:00:00+00:00"}
    apply("drift", None, json.dumps(report).encode())
    apply("drift", None, json.dumps(report).encode())  # a repeat
    assert views.alert_states == {"checkout": engine.state}
    assert views.drift.to_dict() == {"latest": {"m": report}, "recent": [report]}
    apply("changelog", b"checkout", None)  # a tombstone
    assert views.alert_states == {}
    with pytest.raises(ValueError):
        apply("drift", None, b"{not json")
