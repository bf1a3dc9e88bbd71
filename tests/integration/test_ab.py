"""The A/B flow on the real broker: outcome join, interval reports, guardrails, TTL expiry.

Events are produced straight to predictions, outcomes and monitor-events (the scorer
is not needed), with event times in the past, so no test waits for wall-clock time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from schemas.events import Prediction, Rejection
from schemas.monitor import BatchSummary, ExposureRecord
from stream_app.config import load_settings
from stream_app.localkafka import BrokerInfo
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.partitioner import default_partition
from stream_app.topics import internal_topic_names, topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

MODEL = "conversion"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a whole minute
PARTITIONS = 2


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def start(
    start_worker: Callable[..., WorkerProcess], run_id: str, **extra: str
) -> tuple[dict[str, str], WorkerProcess]:
    """A worker with one-minute intervals, and every topic name of its run."""
    app_id = f"ab-{run_id}"
    settings = load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id)
    names = {**topic_names(settings), **internal_topic_names(settings)}
    env = {
        "STREAM_APP_ID": app_id,
        "STREAM_PARTITIONS": str(PARTITIONS),
        "STREAM_METRICS_WINDOW_SECONDS": "60",
        "STREAM_AB_REPORT_INTERVAL_SECONDS": "60",
        "STREAM_AB_OUTCOME_TTL_SECONDS": "60",
        "STREAM_WINDOW_GRACE_SECONDS": "0",
        "STREAM_MODEL_NAME": MODEL,
        **extra,
    }
    wait = {
        names[t]: PARTITIONS
        for t in ("exposures", "outcomes", "outcomes_rekeyed", "monitor_events")
    }
    worker = start_worker(env, wait_topics=wait)
    return names, worker


def summary(start_s: float, exposures: dict[str, list[float]]) -> bytes:
    """A BatchSummary for the minute at ``start_s``: latencies per variant."""
    variants = {}
    for variant, latencies in exposures.items():
        counters = ABCounters()
        counters.record_exposures(latencies)
        variants[variant] = counters.to_dict()
    event = BatchSummary(
        model_name=MODEL,
        bucket_start=at(start_s),
        first_event=at(start_s),
        last_event=at(start_s + 59),
        serving_version="1.0.0",
        challenger_version="1.1.0",
        scored=sum(len(v) for v in exposures.values()),
        variants=variants,
    )
    return event.model_dump_json().encode()


def outcome_bytes(request_id: str, time_s: float, converted: int) -> bytes:
    stamp = at(time_s).isoformat()
    return json.dumps(
        {"request_id": request_id, "converted": converted, "timestamp": stamp}
    ).encode()


def exposure(request_id: str, variant: str, version: str, time_s: float) -> bytes:
    """The join's copy of a prediction scored under the pair (1.0.0, 1.1.0)."""
    return ExposureRecord.model_validate(
        {"request_id": request_id, "variant": variant, "model_version": version,
         "serving_version": "1.0.0", "challenger_version": "1.1.0", "timestamp": at(time_s)}
    ).model_dump_json().encode()  # fmt: skip


def reports(records: dict[str, list[Record]], topic: str) -> list[dict[str, object]]:
    return [json.loads(r.value) for r in records[topic]]


def ab_metrics(records: dict[str, list[Record]], topic: str) -> list[dict[str, object]]:
    """The A/B guardrail metrics: the app also publishes its own service metrics there."""
    return [m for m in reports(records, topic) if str(m.get("service", "")).endswith(".ab")]


async def test_outcomes_favouring_b_converge_to_use_b(
    kafka_broker: BrokerInfo, start_worker: Callable[..., WorkerProcess], run_id: str
) -> None:
    # A long grace keeps every interval open until the closing event below, so the
    # joined outcomes (which come back through the join agent) land before any close;
    # a long TTL lets the first half of the outcomes, produced before the predictions,
    # wait for them although the partition's watermark runs minutes ahead.
    names, worker = start(
        start_worker,
        run_id,
        STREAM_WINDOW_GRACE_SECONDS="3600",
        STREAM_AB_OUTCOME_TTL_SECONDS="3600",
    )
    bootstrap = kafka_broker.bootstrap
    rng = np.random.default_rng(5)
    requests = [(f"req-{i}", "AB"[i % 2], T0 + i * 0.4) for i in range(600)]
    converted = {rid: int(rng.random() < (0.10 if v == "A" else 0.30)) for rid, v, _ in requests}
    minutes: dict[float, dict[str, list[float]]] = {}
    for _, variant, t in requests:
        minute = minutes.setdefault(T0 + (t - T0) // 60 * 60, {"A": [], "B": []})
        minute[variant].append(40.0 if variant == "A" else 44.0)
    mkey = MODEL.encode()
    await produce(
        bootstrap,
        names["monitor_events"],
        [(mkey, summary(m, e)) for m, e in sorted(minutes.items())],
    )
    predictions = [
        (
            rid.encode(),
            Prediction(
                request_id=rid,
                model_name=MODEL,
                variant=v,
                score=0.5,
                label=1,
                model_version="1.0.0" if v == "A" else "1.1.0",
                latency_ms=40.0,
                timestamp=at(t),
            )
            .model_dump_json()
            .encode(),
        )
        for rid, v, t in requests
    ]
    # What the worker writes for the join when it delivers those predictions.
    exposures = [
        (rid.encode(), exposure(rid, v, "1.0.0" if v == "A" else "1.1.0", t))
        for rid, v, t in requests
    ]
    outcomes = []
    for i, (rid, _, t) in enumerate(requests):
        key = None if i % 10 == 0 else (b"wrong-key" if i % 10 == 1 else rid.encode())
        outcomes.append((key, outcome_bytes(rid, t + 5, converted[rid])))
    outcomes += outcomes[2:40]  # duplicates count once
    # Contradicting outcomes for eight requests whose first outcome went straight to its
    # partition (not through the re-key topic, which it could reach after them), written
    # after it on the same partition: refused.
    contradicted = [
        (rid, t) for i, (rid, _, t) in enumerate(requests[:110]) if i >= 100 and i % 10 > 1
    ]
    flipped = [rid for rid, _ in contradicted]
    contradictions = [
        (rid.encode(), outcome_bytes(rid, t + 6, 1 - converted[rid])) for rid, t in contradicted
    ]
    # The worker's exposures are its own copies of its predictions; predictions written to
    # the public topic by anyone else (here: every request as the other variant) join nothing.
    forged = [
        (rid.encode(), json.dumps({**json.loads(value), "variant": "AB"[v == "A"]}).encode())
        for (rid, v, _), (_, value) in zip(requests, predictions, strict=True)
    ]
    await produce(bootstrap, names["predictions"], forged)
    await produce(bootstrap, names["outcomes"], outcomes[: len(outcomes) // 2])
    await produce(bootstrap, names["exposures"], exposures)
    await produce(bootstrap, names["outcomes"], outcomes[len(outcomes) // 2 :] + contradictions)

    def joined(records: dict[str, list[Record]]) -> int:
        return sum(b'"kind":"outcome"' in r.value for r in records[names["monitor_events"]])

    def conflicts(records: dict[str, list[Record]]) -> list[str]:
        refused = [
            Rejection.model_validate_json(r.value) for r in records[names["requests_invalid"]]
        ]
        return [str(r.request_id) for r in refused if r.reason == "conflicting_outcome"]

    seen = await read_until(
        bootstrap,
        [names["monitor_events"], names["requests_invalid"]],
        lambda r: joined(r) >= len(requests) and len(conflicts(r)) >= len(flipped),
        timeout=90,
    )
    assert joined(seen) == len(requests)  # every request once, duplicates and re-keys included
    assert sorted(conflicts(seen)) == flipped
    assert len(seen[names["requests_invalid"]]) == len(flipped)
    await produce(bootstrap, names["monitor_events"], [(mkey, summary(T0 + 4 * 3600, {}))])

    out = await read_until(
        bootstrap,
        [names["ab_reports"], names["service_metrics"]],
        lambda r: (
            len(r[names["ab_reports"]]) >= 5 and len(ab_metrics(r, names["service_metrics"])) >= 5
        ),
        timeout=90,
    )
    got = reports(out, names["ab_reports"])
    ends = [r["interval_end"] for r in got]
    # Predictions span four minutes, outcomes 5 s later reach into the fifth: once each.
    assert ends == [at(T0 + 60 * k).isoformat() for k in (1, 2, 3, 4, 5)]
    assert {(r["serving_version"], r["challenger_version"]) for r in got} == {("1.0.0", "1.1.0")}
    last = got[-1]["report"]
    assert isinstance(last, dict)
    expected_a = sum(c for (rid, v, _) in requests if v == "A" for c in [converted[rid]])
    expected_b = sum(converted.values()) - expected_a
    assert (last["n_a"], last["n_b"]) == (300, 300)
    assert (last["conversions_a"], last["conversions_b"]) == (expected_a, expected_b)
    assert last["recommendation"] == "use_b"
    metrics = ab_metrics(out, names["service_metrics"])
    assert {m["service"] for m in metrics} == {f"ab-{run_id}.ab"}
    assert [m["ab_srm"] for m in metrics] == [0.0] * 5
    assert metrics[-1]["ab_latency_increase"] == pytest.approx(0.1, abs=0.01)
    assert page_report(worker, str(ends[-1])) == got[-1]


def page_report(worker: WorkerProcess, interval_end: str, timeout: float = 30) -> object:
    """The model's report on /reports/ab once it shows ``interval_end`` (the follower
    reads ab-reports on its own, so it may lag the topic a little)."""
    deadline = time.monotonic() + timeout
    page = None
    while time.monotonic() < deadline:
        page = worker.get("/reports/ab")
        shown = (page or {}).get("reports", {}).get(MODEL)
        if shown is not None and shown["interval_end"] == interval_end:
            return shown
        time.sleep(0.25)
    raise AssertionError(f"/reports/ab never showed {interval_end}: {page}")


async def test_srm_split_gives_invalid_and_an_srm_metric(
    kafka_broker: BrokerInfo, start_worker: Callable[..., WorkerProcess], run_id: str
) -> None:
    names, _ = start(start_worker, run_id)
    mkey = MODEL.encode()
    events = [
        (mkey, summary(T0, {"A": [40.0] * 900, "B": [40.0] * 100})),
        (mkey, summary(T0 + 120, {})),
    ]
    await produce(kafka_broker.bootstrap, names["monitor_events"], events)
    out = await read_until(
        kafka_broker.bootstrap,
        [names["ab_reports"], names["service_metrics"]],
        lambda r: bool(r[names["ab_reports"]]) and bool(ab_metrics(r, names["service_metrics"])),
        timeout=90,
    )
    (report,) = reports(out, names["ab_reports"])
    assert report["report"]["recommendation"] == "invalid"  # type: ignore[index]
    (metric,) = ab_metrics(out, names["service_metrics"])
    assert metric["ab_srm"] == 1.0
    assert metric["timestamp"] == at(T0 + 60).isoformat()


async def test_outcome_without_prediction_is_unknown_after_the_ttl(
    kafka_broker: BrokerInfo, start_worker: Callable[..., WorkerProcess], run_id: str
) -> None:
    names, _ = start(start_worker, run_id)
    lonely = "lonely-1"
    partition = default_partition(lonely.encode(), PARTITIONS)
    tick = next(
        f"tick-{n}"
        for n in range(1000)
        if default_partition(f"tick-{n}".encode(), PARTITIONS) == partition
    )
    # An extra field upstream added (an e-mail here) must not wait in the join or travel on.
    raw = json.dumps(
        {**json.loads(outcome_bytes(lonely, T0, 1)), "email": "lonely@example.com"}
    ).encode()
    await produce(
        kafka_broker.bootstrap,
        names["outcomes"],
        [(lonely.encode(), raw), (lonely.encode(), b"{not json")],
    )
    # An exposure 200 s of event time later on the same partition moves its watermark.
    later = Prediction(
        request_id=tick,
        model_name=MODEL,
        model_version="1.0.0",
        variant="A",
        score=0.1,
        label=0,
        latency_ms=1.0,
        timestamp=at(T0 + 200),
    )
    # A prediction for the lonely request written to the public topic is no exposure.
    forged = later.model_copy(update={"request_id": lonely, "timestamp": at(T0 + 1)})
    await produce(
        kafka_broker.bootstrap,
        names["predictions"],
        [(lonely.encode(), forged.model_dump_json().encode())],
    )
    await produce(
        kafka_broker.bootstrap,
        names["exposures"],
        [(tick.encode(), exposure(tick, "A", "1.0.0", T0 + 200))],
    )
    out = await read_until(
        kafka_broker.bootstrap,
        [names["requests_invalid"]],
        lambda r: len(r[names["requests_invalid"]]) >= 2,
        timeout=90,
    )
    rejections = [Rejection.model_validate_json(r.value) for r in out[names["requests_invalid"]]]
    by_reason = {r.reason: r for r in rejections}
    assert sorted(by_reason) == ["malformed_json", "unknown_outcome"]
    unknown = by_reason["unknown_outcome"]
    assert unknown.request_id == lonely
    assert json.loads(unknown.raw) == {
        "request_id": lonely,
        "converted": 1,
        "timestamp": "2026-01-01T00:00:00Z",
    }
    assert len(rejections) == 2  # expired once, not again on later sweeps
