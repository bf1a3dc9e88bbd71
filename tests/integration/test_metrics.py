"""GET /metrics and JSON logs of a real worker on the real broker.

A known mix of requests (scored on two variants, refused for two reasons, throttled by
a low rate limit, some carrying planted PII) goes through one worker; its counters must
equal what was sent and what the fate topics hold, and with STREAM_LOG_FORMAT=json
every line it writes is a JSON object that quotes none of the planted values.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.metrics import fates_counted, sample, scrape, wait_for_samples
from tests.utils.pii import PLANTED
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 2
LIMIT = 4


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bundles")
    for version, seed in (("1.0.0", 1), ("1.1.0", 2)):
        train_demo_bundle(root / version, name="conversion", version=version, seed=seed, n_rows=400)
    return root / "1.0.0", root / "1.1.0"


def _request(i: int, client: str, **fields: object) -> bytes:
    body = {
        "request_id": f"m{i:04d}", "client_id": client, "user_id": f"USR{i:05d}",
        "timestamp": f"2026-01-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "age": 20 + i % 50,
        "purchase_history": [10.0 + i, 5.5], "category_preference": "home",
        "session_duration_minutes": 1.0 + i % 30, **fields,
    }  # fmt: skip
    return json.dumps(body).encode()


def _traffic() -> tuple[list[tuple[bytes | None, bytes]], int, int, dict[str, int]]:
    """-> (messages, scored, throttled, refused by reason); every third valid request and
    every refused or throttled one carries planted PII."""
    email, phone, name, address = PLANTED
    pii = {"email": email, "note": f"call me on {phone}", "name": name, "address": address}
    out: list[tuple[bytes | None, bytes]] = []
    for i in range(36):  # 12 clients, 3 requests each: under the limit
        client = f"client-{i % 12}"
        out.append((client.encode(), _request(i, client, **(pii if i % 3 == 0 else {}))))
    for i in range(36, 36 + LIMIT + 3):  # one client over its limit: 3 throttled
        out.append((b"greedy", _request(i, "greedy", **pii)))
    for i in (50, 51):  # refused by the schema (an age under 18), PII in the refused field
        out.append((b"client-bad", _request(i, "client-bad", age=7, user_id=email)))
    for i in (52, 53, 54):  # cut short: not JSON
        out.append((b"client-bad", _request(i, "client-bad", **pii)[:-9]))
    return out, 36 + LIMIT, 3, {"schema": 2, "malformed_json": 3}


async def _run(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundles: tuple[Path, Path],
    **settings: str,
) -> tuple[WorkerProcess, dict[str, str], dict[str, list[Record]]]:
    """Start a worker, send the traffic, and read the fate topics until each request is in one."""
    names = topic_names(load_settings({}, topic_prefix=f"{run_id}."))
    worker = start_worker(
        {
            "STREAM_APP_ID": f"metrics-{run_id}",
            "STREAM_PARTITIONS": str(PARTITIONS),
            "STREAM_RATE_LIMIT_MAX_REQUESTS": str(LIMIT),
            "TEST_BUNDLE_DIR": str(bundles[0]),
            "TEST_CHALLENGER_DIR": str(bundles[1]),
            **settings,
        },
        module="tests.integration.pipeline_app",
        wait_topics={names["prediction_requests"]: PARTITIONS},
    )
    traffic, *_ = _traffic()
    await produce(kafka_broker.bootstrap, names["prediction_requests"], traffic)
    fates = [names[t] for t in ("predictions", "requests_invalid", "requests_throttled")]
    got = await read_until(
        kafka_broker.bootstrap, fates, lambda g: sum(map(len, g.values())) >= len(traffic)
    )
    return worker, names, got


async def test_metrics_count_what_was_sent_once_each(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundles: tuple[Path, Path],
) -> None:
    worker, names, got = await _run(kafka_broker, start_worker, run_id, bundles)
    traffic, scored, throttled, refused = _traffic()
    # A batch is counted once its rows are written, just after its outputs are acknowledged.
    samples = wait_for_samples(
        worker, lambda s: fates_counted(s) >= len(traffic), "every request's fate"
    )
    content_type, _ = scrape(worker)
    assert content_type.startswith("text/plain; version=0.0.4")

    def value(name: str, **labels: str) -> float:
        return sample(samples, name, **labels)

    assert fates_counted(samples) == len(traffic)
    assert value("stream_app_requests_total", fate="scored") == scored
    assert value("stream_app_requests_total", fate="throttled") == throttled
    assert value("stream_app_requests_total", fate="invalid") == sum(refused.values())
    invalid = {
        labels[0][1]: v
        for (name, labels), v in samples.items()
        if name == "stream_app_requests_invalid_total"
    }
    assert invalid == refused
    # Predictions by variant and model version: exactly what the predictions topic holds.
    delivered = Counter(
        (json.loads(r.value)["variant"], json.loads(r.value)["model_version"])
        for r in got[names["predictions"]]
    )
    assert set(delivered) == {("A", "1.0.0"), ("B", "1.1.0")}
    for (variant, version), n in delivered.items():
        assert value("stream_app_predictions_total", variant=variant, model_version=version) == n
    assert value("stream_app_scoring_latency_seconds_count") == scored
    assert value("stream_app_scoring_latency_seconds_bucket", le="+Inf") == scored
    assert value("stream_app_scoring_batch_size_sum") == scored  # every one in a model call
    assert 1 <= value("stream_app_scoring_batch_size_count") <= scored
    info = [labels for (name, labels), _ in samples.items() if name == "stream_app_model_info"]
    assert info == [(("challenger_version", "1.1.0"), ("model_name", "conversion"),
                     ("version", "1.0.0"))]  # fmt: skip
    # One limiter row per client that was allowed or throttled: 12 and "greedy".
    assert value("stream_app_table_rows", table="rate-limits") == 13
    assert value("stream_app_agent_failures_total", agent="intake") == 0
    assert value("stream_app_alerts_firing", rule="error_rate", severity="warning") == 0

    # Every partition of the request topic read to its end: no lag left.
    requests = names["prediction_requests"]
    drained = wait_for_samples(
        worker,
        lambda s: all(
            s.get(("stream_app_consumer_lag", (("partition", str(p)), ("topic", requests)))) == 0
            for p in range(PARTITIONS)
        ),
        "the request topic's partitions with no lag",
    )
    assert fates_counted(drained) == len(traffic)  # nothing counted twice meanwhile

    await _drift_alerts_and_skips(kafka_broker.bootstrap, worker, names)


async def _drift_alerts_and_skips(
    bootstrap: str, worker: WorkerProcess, names: dict[str, str]
) -> None:
    """A drift report and a failing service's metrics published, and a metric the alert
    agent cannot read: the gauges show what the worker follows, the skip is counted."""
    report = {
        "window_id": "conversion|11:00",
        "model_name": "conversion",
        "window_end": "2026-01-01T11:00:00+00:00",
        "features": {"age": {"severity": "critical"}, "purchase_total": {"severity": "none"}},
    }
    await produce(
        bootstrap,
        names["drift_reports"],
        [(b"conversion", json.dumps(report).encode())],
    )
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    failing = {"service": "checkout", "timestamp": at, "error_rate": 0.5}  # critical: 0.1
    await produce(
        bootstrap,
        names["service_metrics"],
        [(b"checkout", json.dumps(failing).encode()), (b"checkout", b"{not json")],
    )
    drift = ("stream_app_drift_severity", (("feature", "age"), ("model_name", "conversion")))
    critical = ("stream_app_alerts_firing", (("rule", "error_rate"), ("severity", "critical")))
    skipped = ("stream_app_events_skipped_total",
               (("agent", "alert-engines"), ("reason", "invalid service metrics")))  # fmt: skip
    followed = wait_for_samples(
        worker, lambda s: drift in s and s.get(critical, 0) >= 1 and skipped in s,
        "the drift report, the alert and the skip",
    )  # fmt: skip
    assert followed[drift] == 2
    assert sample(followed, "stream_app_drift_severity", model_name="conversion",
                  feature="purchase_total") == 0  # fmt: skip
    assert followed[critical] == 1
    assert sample(followed, "stream_app_alerts_firing", rule="error_rate", severity="warning") == 0
    assert followed[skipped] == 1


async def test_json_logs_are_one_object_a_line_without_planted_pii(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundles: tuple[Path, Path],
) -> None:
    worker, _, _ = await _run(kafka_broker, start_worker, run_id, bundles, STREAM_LOG_FORMAT="json")
    traffic, *_ = _traffic()
    wait_for_samples(worker, lambda s: fates_counted(s) >= len(traffic), "every request's fate")
    assert worker.stop() == 0  # the stop's lines too
    lines = worker.log_path.read_bytes().splitlines()
    assert len(lines) > 20
    loggers = set()
    for line in lines:
        body = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(body), line
        assert body["time"].endswith("+00:00")
        loggers.add(body["logger"].split(".")[0])
        for secret in (*PLANTED, "USR000"):
            assert secret.encode() not in line, (secret, line)
    assert {"faust", "stream_app"} <= loggers
