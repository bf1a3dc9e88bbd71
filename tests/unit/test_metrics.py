"""The app's Prometheus metrics: fates counted into their metrics, one registry per app."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from agents import build_pipeline
from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.metrics import Metrics, RequestFate, gauge_family


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scored(variant: str, version: str, latency: float) -> RequestFate:
    return RequestFate("scored", variant=variant, model_version=version, latency_seconds=latency)


def test_a_delivered_batch_counts_each_fate_once_into_its_metrics() -> None:
    metrics = Metrics()
    metrics.count_fates(
        [
            scored("A", "1.0.0", 0.004),
            scored("B", "1.1.0", 0.2),
            scored("A", "1.0.0", 0.03),
            RequestFate("invalid", reason="scoring_failed"),
            RequestFate("invalid", reason="schema"),
            RequestFate("throttled"),
        ]  # fmt: skip
    )
    metrics.count_fates([RequestFate("invalid", reason="schema")])  # a batch without scoring
    got = samples(metrics)
    assert got[("stream_app_requests_total", (("fate", "scored"),))] == 3
    assert got[("stream_app_requests_total", (("fate", "invalid"),))] == 3
    assert got[("stream_app_requests_total", (("fate", "throttled"),))] == 1
    assert got[("stream_app_requests_invalid_total", (("reason", "schema"),))] == 2
    assert got[("stream_app_requests_invalid_total", (("reason", "scoring_failed"),))] == 1
    by_variant = (("model_version", "1.0.0"), ("variant", "A"))
    assert got[("stream_app_predictions_total", by_variant)] == 2
    assert (
        got[("stream_app_predictions_total", (("model_version", "1.1.0"), ("variant", "B")))] == 1
    )
    assert got[("stream_app_scoring_latency_seconds_count", ())] == 3
    assert got[("stream_app_scoring_latency_seconds_bucket", (("le", "0.005"),))] == 1
    assert got[("stream_app_scoring_latency_seconds_bucket", (("le", "0.05"),))] == 2
    # One model call of four requests (three scored, one the model failed on).
    assert got[("stream_app_scoring_batch_size_count", ())] == 1
    assert got[("stream_app_scoring_batch_size_sum", ())] == 4


def test_every_fate_is_exported_before_the_first_request() -> None:
    got = samples(Metrics())
    for fate in ("scored", "invalid", "throttled"):
        assert got[("stream_app_requests_total", (("fate", fate),))] == 0


def test_two_apps_in_one_process_count_apart_and_sources_are_read_when_scraped() -> None:
    first, second = Metrics(), Metrics()
    first.count_fates([RequestFate("throttled")])
    rows = {("rate-limits",): 1.0}
    second.add_source(
        lambda: [gauge_family("stream_app_table_rows", "rows", ("table",), rows.items())]
    )
    rows[("rate-limits",)] = 7.0
    assert samples(first)[("stream_app_requests_total", (("fate", "throttled"),))] == 1
    assert samples(second)[("stream_app_requests_total", (("fate", "throttled"),))] == 0
    assert samples(second)[("stream_app_table_rows", (("table", "rate-limits"),))] == 7


# The names every part of the project uses (dashboards, alert rules): exactly these.
AGREED = {
    "stream_app_requests_total", "stream_app_requests_invalid_total",
    "stream_app_scoring_latency_seconds", "stream_app_scoring_batch_size",
    "stream_app_predictions_total", "stream_app_model_info", "stream_app_consumer_lag",
    "stream_app_drift_severity", "stream_app_alerts_firing", "stream_app_table_rows",
    "stream_app_events_skipped_total", "stream_app_agent_failures_total",
}  # fmt: skip


def test_a_worker_exports_exactly_the_agreed_metric_names_before_any_traffic() -> None:
    app = build_pipeline(create_app(load_settings({}, app_id="names")))
    text = app.metrics.render().decode()
    declared = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    # prometheus_client adds a `_created` gauge (the start time) to counters and histograms.
    assert {n for n in declared if not n.endswith("_created")} == AGREED
    tables = {s.labels["table"] for f in text_string_to_metric_families(text) for s in f.samples
              if s.name == "stream_app_table_rows"}  # fmt: skip
    assert tables == {"rate-limits", "ab-join", "drift-windows", "service-metric-windows",
                      "ab-report", "alert-engines"}  # fmt: skip
