"""`make demo`'s code path on a small day: exact fates, no PII out, the same report twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stream_app.demo.report import REQUEST_REASONS
from stream_app.demo.report_text import stable_part
from stream_app.demo.run import DemoOptions, DemoResult, run_demo
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from tests.utils.kafka_io import read_topics
from tests.utils.worker import free_port

pytestmark = pytest.mark.integration

# Small enough to play in seconds, large enough for every invalid kind, three bursts,
# PII requests and every hour's drift window.
REQUESTS = 1_800
PII_TOPICS = ("prediction_logs", "predictions", "alerts", "drift_reports", "ab_reports")


def demo_once(kafka: BrokerInfo, data: Path, run_id: str, lines: list[str]) -> DemoResult:
    environ = {
        "STREAM_BROKER_URL": f"kafka://{kafka.bootstrap}",
        "STREAM_DATA_DIR": str(data),
        "STREAM_WEB_PORT": str(free_port()),
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
    }
    options = DemoOptions(seed=11, requests=REQUESTS, drain_timeout=60.0)
    return run_demo(options, lines.append, environ)


def test_demo_day_matches_its_truth_and_reproduces_its_report(
    kafka_broker: BrokerInfo, tmp_path: Path, run_id: str
) -> None:
    lines: list[str] = []
    first = demo_once(kafka_broker, tmp_path / "data", run_id, lines)
    assert first.drained, "\n".join(lines[-30:])
    truth, summary = first.scenario.truth, first.summary

    # Every request accounted for, by fate and by reason.
    assert summary.predictions == truth.count("scored")
    assert dict(summary.throttled_by_client) == dict(truth.throttled_by_client)
    requests_invalid = {r: n for r, n in summary.invalid_by_reason.items() if r in REQUEST_REASONS}
    assert requests_invalid == dict(truth.invalid_by_reason)
    assert summary.invalid_requests == truth.count("invalid") + truth.invalid_unidentified
    assert sum(summary.predictions_by_variant.values()) == sum(truth.exposures.values())

    # The same request ids come out as predictions; no planted PII value in any byte.
    names = topic_names(first.settings)
    found = asyncio.run(
        read_topics(kafka_broker.bootstrap, [names[t] for t in PII_TOPICS], idle_seconds=1.0)
    )
    predicted = {r.key for r in found[names["predictions"]]}
    scored = {rid.encode() for rid, fate in truth.fates.items() if fate == "scored"}
    assert predicted == scored
    assert truth.pii_values
    everything = b"\n".join(
        (r.key or b"") + b"\t" + r.value for records in found.values() for r in records
    )
    leaked = [value for value in truth.pii_values if value.encode() in everything]
    assert leaked == []

    # A second run of the same seed (fresh topics, its own worker) prints the same report.
    second = demo_once(kafka_broker, tmp_path / "data", run_id + "b", lines)
    assert second.drained, "\n".join(lines[-30:])
    assert second.settings.app_id != first.settings.app_id
    assert stable_part(second.report) == stable_part(first.report)
    assert "bundle conversion 1.0.0: reused" in "\n".join(lines)
