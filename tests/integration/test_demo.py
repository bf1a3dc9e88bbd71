"""`make demo`'s code path on a small day, checked against the scenario's truth and
every output message against its topic's exported JSON Schema.

One run only: a day of this size takes some 40 s here (the pipeline does about 100
events/s on the 2 shared cores), so a second run to compare reports would double that.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from schemas.contracts import OUTPUTS
from stream_app.commands.schemas import export_schemas
from stream_app.demo.report import REQUEST_REASONS
from stream_app.demo.run import DemoOptions, DemoResult, run_demo
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from tests.utils.kafka_io import read_topics
from tests.utils.worker import free_port

pytestmark = pytest.mark.integration

# Small enough to play in half a minute, large enough for every invalid kind, three
# bursts, PII requests and a drift window every hour.
REQUESTS = 1_500
PII_TOPICS = ("prediction_logs", "predictions", "alerts", "drift_reports", "ab_reports")


def demo_once(kafka: BrokerInfo, data: Path, run_id: str, lines: list[str]) -> DemoResult:
    environ = {
        "STREAM_BROKER_URL": f"kafka://{kafka.bootstrap}",
        "STREAM_DATA_DIR": str(data),
        "STREAM_WEB_PORT": str(free_port()),
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
    }
    # The drain timeout guards against a hang; it is not a speed limit.
    options = DemoOptions(seed=11, requests=REQUESTS, drain_timeout=180.0)
    return run_demo(options, lines.append, environ)


def test_demo_day_matches_its_truth(kafka_broker: BrokerInfo, tmp_path: Path, run_id: str) -> None:
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
    everything_out = asyncio.run(
        read_topics(kafka_broker.bootstrap, [names[t] for t in OUTPUTS], idle_seconds=1.0)
    )
    found = {names[t]: everything_out[names[t]] for t in PII_TOPICS}
    predicted = {r.key for r in found[names["predictions"]]}
    scored = {rid.encode() for rid, fate in truth.fates.items() if fate == "scored"}
    assert predicted == scored
    assert truth.pii_values
    everything = b"\n".join(
        (r.key or b"") + b"\t" + r.value for records in found.values() for r in records
    )
    leaked = [value for value in truth.pii_values if value.encode() in everything]
    assert leaked == []

    # The shifted feature is found from the shift on, the planted incident alerts once.
    shifted = [f for f in summary.drift_found if truth.shift_feature in f.features]
    assert shifted, first.report
    assert min(f.window_start or "" for f in shifted) >= truth.shift_at.isoformat()
    incident = [a.kind for a in summary.alerts if a.service == truth.incident_service]
    assert incident == ["firing", "escalated", "deescalated", "resolved"], first.report

    # Every message of every output topic matches the JSON Schema its contract exports.
    schemas = tmp_path / "contracts"
    export_schemas(schemas)
    counts, refused = {}, {}
    for attr in OUTPUTS:
        schema = json.loads((schemas / f"{attr}.schema.json").read_text())
        validator = Draft202012Validator(schema)
        records = everything_out[names[attr]]
        counts[attr] = len(records)
        bad = [r.offset for r in records if not validator.is_valid(json.loads(r.value))]
        if bad:
            refused[attr] = bad[:5]
    assert refused == {}
    assert [attr for attr, n in counts.items() if n == 0] == [], counts
    logged = {r.key for r in everything_out[names["prediction_logs"]]}
    assert logged == predicted
