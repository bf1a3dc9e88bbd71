"""The request path on the real broker: every request leaves through exactly one topic."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import internal_topic_names, topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 2
LIMIT = 5
PII = ("ann.lee@example.com", "+44 20 7946 0958", "Ann Lee", "221B Baker Street")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=400)
    return out


def _request(i: int, client: str, **extra: object) -> dict[str, object]:
    return {
        "request_id": f"r{i:04d}",
        "client_id": client,
        "timestamp": f"2026-01-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "user_id": f"USR{i:05d}",
        "age": 20 + i % 50,
        "purchase_history": [10.0 + i, 5.5],
        "category_preference": ("electronics", "clothing", "home", "sports")[i % 4],
        "session_duration_minutes": 1.0 + i % 30,
        **extra,
    }


def _traffic() -> tuple[list[tuple[bytes | None, bytes]], Counter[str]]:
    """Requests of every kind, and how many of each outcome they must give."""
    out: list[tuple[bytes | None, bytes]] = []
    expect: Counter[str] = Counter()
    i = 0
    for n in range(40):  # well-behaved clients, some with PII riding along
        client = f"client-{n % 10}"
        extra = (
            {"email": PII[0], "note": f"call me on {PII[1]}", "name": PII[2]} if n % 7 == 0 else {}
        )
        out.append((client.encode(), json.dumps(_request(i, client, **extra)).encode()))
        expect["predictions"] += 1
        i += 1
    for key in (None, b"someone-else"):  # missing and wrong keys are re-keyed, not dropped
        for _ in range(3):
            request = _request(i, f"client-rekey-{i % 2}", address=PII[3])
            out.append((key, json.dumps(request).encode()))
            expect["predictions"] += 1
            i += 1
    for n in range(LIMIT + 3):  # one client over its limit within a minute, with PII along
        greedy = _request(i, "greedy", email=PII[0], note=f"call me on {PII[1]}")
        out.append((b"greedy", json.dumps(greedy).encode()))
        expect["predictions" if n < LIMIT else "throttled"] += 1
        i += 1
    bad_schema = _request(i, "client-bad", age=7, user_id=PII[0])
    out.append((b"client-bad", json.dumps(bad_schema).encode()))
    future = _request(i + 1, "client-bad", timestamp="2100-01-01T00:00:00Z")
    out.append((b"client-bad", json.dumps(future).encode()))
    out.append((b"client-bad", b'{"request_id": "r9998", "client_id": '))
    big = _request(9999, "client-big", note="x" * (1024 * 1024))
    out.append((b"client-big", json.dumps(big).encode()))
    expect["invalid"] += 4
    return out, expect


def _request_id(record: Record, topic: str) -> str:
    value = json.loads(record.value)
    if topic == "throttled":
        return str(value["request"]["request_id"])
    if topic == "invalid":
        if value.get("request_id"):
            return str(value["request_id"])
        raw = base64.b64decode(value["raw"])
        return (
            "r9998"
            if raw.startswith(b'{"request_id": "r9998"')
            else str(json.loads(raw)["request_id"])
        )
    return str(value["request_id"])


async def test_every_request_leaves_through_exactly_one_topic_and_no_pii_leaks(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"path-{run_id}"
    settings = load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id)
    names = {**topic_names(settings), **internal_topic_names(settings)}
    worker = start_worker(
        {
            "STREAM_APP_ID": app_id,
            "STREAM_PARTITIONS": str(PARTITIONS),
            "STREAM_RATE_LIMIT_MAX_REQUESTS": str(LIMIT),
            "TEST_BUNDLE_DIR": str(bundle_dir),
        },
        module="tests.integration.pipeline_app",
        wait_topics={names["prediction_requests"]: PARTITIONS},
    )
    traffic, expect = _traffic()
    await produce(kafka_broker.bootstrap, names["prediction_requests"], traffic)

    outputs = {
        "predictions": names["predictions"],
        "invalid": names["requests_invalid"],
        "throttled": names["requests_throttled"],
        "logs": names["prediction_logs"],
        "monitor": names["monitor_events"],
        "rekeyed": names["requests_rekeyed"],
    }
    total = sum(expect.values())

    def done(got: dict[str, list[Record]]) -> bool:
        counted = sum(len(got[outputs[k]]) for k in ("predictions", "invalid", "throttled"))
        return counted >= total and len(got[outputs["logs"]]) >= expect["predictions"]

    got = await read_until(kafka_broker.bootstrap, list(outputs.values()), done, timeout=90)

    seen: Counter[str] = Counter()
    for kind in ("predictions", "invalid", "throttled"):
        ids = [_request_id(r, kind) for r in got[outputs[kind]]]
        assert len(ids) == expect[kind], f"{kind}: {' '.join(sorted(ids))}"
        seen.update(ids)
    assert len(seen) == total and set(seen.values()) == {1}
    rekeyed = got[outputs["rekeyed"]]
    assert len(rekeyed) == 6 and all(r.key.startswith(b"client-rekey-") for r in rekeyed)
    reasons = Counter(json.loads(r.value)["reason"] for r in got[outputs["invalid"]])
    assert reasons == {"schema": 1, "timestamp_ahead": 1, "malformed_json": 1, "too_large": 1}
    locs = {e["loc"] for r in got[outputs["invalid"]] for e in json.loads(r.value)["errors"]}
    assert "timestamp" in locs  # stamped after the broker received it: refused
    throttled = [json.loads(r.value) for r in got[outputs["throttled"]]]
    assert all(t["retry_after_seconds"] > 0 and t["remaining"] == 0 for t in throttled)

    logs = got[outputs["logs"]]
    assert sorted(r.key for r in logs) == sorted(r.key for r in got[outputs["predictions"]])
    for record in [*logs, *got[outputs["predictions"]], *got[outputs["monitor"]]]:
        for secret in PII:
            assert secret.encode() not in record.value, secret
        assert b"USR000" not in record.value  # no pseudonym key: user ids are dropped
    summaries = [json.loads(r.value) for r in got[outputs["monitor"]]]
    scored = sum(s.get("scored", 0) for s in summaries)
    # Silence ticks (agents/silence.py) share the topic; they count no request.
    counted = Counter(s["kind"] for s in summaries if s["kind"] not in ("scored", "tick"))
    assert scored == expect["predictions"]
    assert counted == {"rejected": expect["invalid"], "throttled": expect["throttled"]}

    # An outcome and a service metric with PII riding along, both without a key (re-keyed),
    # the outcome for a request nobody made (it waits in the join table).
    outcome = {"request_id": "r-nobody", "converted": 1, "timestamp": "2026-01-01T10:00:00Z",
               "email": PII[0], "name": PII[2]}  # fmt: skip
    metric = {"service": "pii-svc", "timestamp": "2026-01-01T10:00:00Z", "error_rate": 0.01,
              "owner": PII[2], "contact": PII[1]}  # fmt: skip
    await produce(kafka_broker.bootstrap, names["outcomes"], [(None, json.dumps(outcome).encode())])
    await produce(
        kafka_broker.bootstrap, names["service_metrics"], [(None, json.dumps(metric).encode())]
    )
    copies = [names["outcomes_rekeyed"], names["metrics_rekeyed"]]
    await read_until(kafka_broker.bootstrap, copies, lambda g: all(g[t] for t in copies))
    await _no_pii_anywhere_but_the_inputs_and_invalid(kafka_broker.bootstrap, run_id, app_id, names)
    log = worker.log_path.read_bytes()
    assert b"USR000" not in log
    for secret in PII:
        assert secret.encode() not in log, secret


async def _no_pii_anywhere_but_the_inputs_and_invalid(
    bootstrap: str, run_id: str, app_id: str, names: dict[str, str]
) -> None:
    """Every topic the app wrote for this run (outputs, internal topics, changelogs)
    holds none of the planted PII; requests-invalid is the documented exception."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith((f"{run_id}.", app_id))]
    finally:
        await admin.close()
    exempt = {names[a] for a in ("prediction_requests", "outcomes", "service_metrics")}
    exempt.add(names["requests_invalid"])
    written = sorted(set(topics) - exempt)
    assert any(t.endswith("-ab-join-changelog") for t in written)  # the waiting outcome's
    got = await read_until(bootstrap, written, None)
    for topic, records in got.items():
        for record in records:
            for secret in PII:
                assert secret.encode() not in record.value + (record.key or b""), (topic, secret)
