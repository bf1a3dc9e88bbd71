"""What one producer writes cannot buy it a better decision or stop a monitor: a burst
stamped to dodge the rate limit is judged by when it reached the broker, across a
restart; an outcome and a service metric from the far future are refused and the join
and the alerts carry on for everyone else; an input topic on which producers choose the
Kafka timestamps is reported; a batch of requests at every cap is scored while /livez
keeps answering; the web pages name no table, topic, host or path."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.events import DEFAULT_MAX_PURCHASE_HISTORY, MAX_CLIENT_ID_LENGTH
from stream_app.config import load_settings
from stream_app.kafka_admin import TopicRequest, ensure_topics
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import TIMESTAMP_TYPE, internal_topic_names, topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 2
MODULE = "tests.integration.pipeline_app"
FAR_FUTURE = "9999-12-31T00:00:00+00:00"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=400)
    return out


def _names(run_id: str, app_id: str) -> dict[str, str]:
    settings = load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id)
    return {**topic_names(settings), **internal_topic_names(settings)}


def _request(rid: str, client: str, at: datetime) -> tuple[bytes, bytes]:
    body = {
        "request_id": rid, "client_id": client, "user_id": f"USR{rid}",
        "timestamp": at.isoformat(), "age": 35, "purchase_history": [12.0, 3.5],
        "category_preference": "home", "session_duration_minutes": 4.0,
    }  # fmt: skip
    return client.encode(), json.dumps(body).encode()


def _rid(record: Record) -> str:
    value = json.loads(record.value)
    return str(value.get("request", value)["request_id"])


async def test_a_burst_stamped_a_month_back_and_spaced_out_is_throttled_across_a_restart(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"burst-{run_id}"
    names = _names(run_id, app_id)
    source, bootstrap = names["prediction_requests"], kafka_broker.bootstrap
    fates = [names["predictions"], names["requests_throttled"], names["requests_invalid"]]
    env = {
        "STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
        "STREAM_RATE_LIMIT_MAX_REQUESTS": "60",
        # An hour's window outlasts the restart however slow the machine.
        "STREAM_RATE_LIMIT_WINDOW_SECONDS": "3600", "TEST_BUNDLE_DIR": str(bundle_dir),
    }  # fmt: skip
    month_ago = datetime.now(UTC) - timedelta(days=30)
    # Each request stamped 61 s after the one before: by its own timestamps, no two share
    # a minute, let alone an hour's window of 60.
    burst = [_request(f"r{i:03d}", "greedy", month_ago + timedelta(seconds=61 * i))
             for i in range(600)]  # fmt: skip

    def decided(n: int) -> Callable[[dict[str, list[Record]]], bool]:
        return lambda got: len({_rid(r) for t in fates for r in got[t]}) >= n

    worker = start_worker(env, module=MODULE, wait_topics={source: PARTITIONS})
    worker.wait_ready()
    await produce(bootstrap, source, burst[:300])
    await read_until(bootstrap, fates, decided(300), idle_seconds=0)
    assert worker.stop() == 0
    worker = start_worker(env, module=MODULE, wait_topics={source: PARTITIONS})
    worker.wait_ready()
    await produce(bootstrap, source, burst[300:])
    got = await read_until(bootstrap, fates, decided(600))

    scored = {_rid(r) for r in got[names["predictions"]]}
    throttled = {_rid(r) for r in got[names["requests_throttled"]]}
    assert scored == {f"r{i:03d}" for i in range(60)}
    assert throttled == {f"r{i:03d}" for i in range(60, 600)}
    assert got[names["requests_invalid"]] == []


async def test_an_outcome_and_a_metric_from_the_far_future_stop_no_join_and_no_alert(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"future-{run_id}"
    names = _names(run_id, app_id)
    bootstrap = kafka_broker.bootstrap
    env = {
        "STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
        "STREAM_RATE_LIMIT_MAX_REQUESTS": "100000", "TEST_BUNDLE_DIR": str(bundle_dir),
    }  # fmt: skip
    worker = start_worker(env, module=MODULE, wait_topics={names["prediction_requests"]: 2})
    worker.wait_ready()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    # The attack: on every partition an outcome stamped in the year 9999, and a metric of
    # the victim service stamped a year ahead.
    forged = [(f"forged-{p}".encode(), json.dumps(
        {"request_id": f"forged-{p}", "converted": 1, "timestamp": FAR_FUTURE}).encode())
        for p in range(8)]  # fmt: skip
    await produce(bootstrap, names["outcomes"], forged)
    ahead = (t0 + timedelta(days=365)).isoformat()
    await produce(
        bootstrap,
        names["service_metrics"],
        [(b"victim", json.dumps({"timestamp": ahead, "latency_p99_ms": 5.0}).encode())],
    )

    # Then ordinary traffic: 1,000 requests and their outcomes, and an incident of the
    # victim (40 clients of 25 requests: the rate limit stays out of the way).
    pairs = 1000
    # A quarter second apart: all of them behind the broker's clock (t0 is 10 min back).
    requests = [_request(f"q{i:04d}", f"client-{i % 40}", t0 + timedelta(seconds=i / 4))
                for i in range(pairs)]  # fmt: skip
    await produce(bootstrap, names["prediction_requests"], requests)
    await read_until(
        bootstrap, [names["predictions"]], lambda g: len(g[names["predictions"]]) >= pairs
    )
    outcomes = [(f"q{i:04d}".encode(), json.dumps({
        "request_id": f"q{i:04d}", "converted": i % 2,
        "timestamp": (t0 + timedelta(seconds=i / 4 + 30)).isoformat()}).encode())
        for i in range(pairs)]  # fmt: skip
    await produce(bootstrap, names["outcomes"], outcomes)
    incident = [(b"victim", json.dumps({"timestamp": (t0 + timedelta(minutes=m)).isoformat(),
                                        "latency_p99_ms": 1500.0}).encode())
                for m in range(4)]  # fmt: skip
    await produce(bootstrap, names["service_metrics"], incident)

    monitor, alerts, invalid = names["monitor_events"], names["alerts"], names["requests_invalid"]

    def joined(got: dict[str, list[Record]]) -> list[str]:
        values = [json.loads(r.value) for r in got[monitor]]
        return [v["request_id"] for v in values if v["kind"] == "outcome"]

    def done(got: dict[str, list[Record]]) -> bool:
        fired = any(json.loads(r.value)["service"] == "victim" for r in got[alerts])
        return len(set(joined(got))) >= pairs and len(got[invalid]) >= len(forged) and fired

    got = await read_until(bootstrap, [monitor, alerts, invalid], done)
    assert sorted(set(joined(got))) == [f"q{i:04d}" for i in range(pairs)]
    refused = [json.loads(r.value) for r in got[invalid]]
    assert sorted(r["request_id"] for r in refused) == sorted(k.decode() for k, _ in forged)
    assert {r["reason"] for r in refused} == {"timestamp_ahead"}
    fired = [json.loads(r.value) for r in got[alerts]]
    victim = [(a["rule"], a["kind"], a["severity"]) for a in fired if a["service"] == "victim"]
    assert victim[0] == ("latency_p99_ms", "firing", "critical")


async def test_an_input_topic_whose_producers_choose_its_timestamps_is_reported(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"clocks-{run_id}"
    names = _names(run_id, app_id)
    # Created before the app, as by hand: the broker keeps the producer's timestamps.
    made = TopicRequest(names["outcomes"], PARTITIONS, 1, {TIMESTAMP_TYPE: "CreateTime"})
    assert await ensure_topics(kafka_broker.bootstrap, [made]) == [names["outcomes"]]
    env = {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
           "TEST_BUNDLE_DIR": str(bundle_dir)}  # fmt: skip
    worker = start_worker(env, module=MODULE, wait_topics={names["prediction_requests"]: 2})
    worker.wait_ready()

    report = worker.get("/health") or {}
    assert report["status"] == "degraded"
    assert report["failures"]["non_critical"] == ["clocks"]
    assert report["clocks"]["create_time_topics"] == [names["outcomes"]]
    (fix,) = report["clocks"]["fix"]
    assert f"--entity-name {names['outcomes']} --add-config " in fix
    assert fix.endswith("message.timestamp.type=LogAppendTime")
    warned = f"input topic {names['outcomes']} keeps message.timestamp.type=CreateTime"
    assert warned in worker.log_path.read_text()


async def test_the_web_surface_names_no_table_topic_host_or_path(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"web-{run_id}"
    names = _names(run_id, app_id)
    env = {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
           "TEST_BUNDLE_DIR": str(bundle_dir)}  # fmt: skip
    worker = start_worker(env, module=MODULE, wait_topics={names["prediction_requests"]: 2})
    worker.wait_ready()
    for path in ("/table/", "/router/", "/graph/", "/stats/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(worker.web_url + path, timeout=5)  # noqa: S310 - our worker
        assert refused.value.code == 404, path
    pages = json.dumps([worker.get(p) for p in ("/health", "/readyz", "/registry")])
    assert kafka_broker.bootstrap not in pages
    assert str(bundle_dir) not in pages


def _worst(i: int) -> tuple[bytes, bytes]:
    """A request at every cap that is still accepted: 1,000 purchases, the longest client
    id, 64 extra fields holding 15,937 bytes of compact JSON."""
    client = f"w{i:02d}-".ljust(MAX_CLIENT_ID_LENGTH, "c")
    purchases = [float(n % 97 + 1) for n in range(DEFAULT_MAX_PURCHASE_HISTORY)]
    body = {
        "request_id": f"w{i:02d}", "client_id": client, "user_id": "USR".ljust(128, "7"),
        "age": 41, "purchase_history": purchases,
        "category_preference": "electronics", "session_duration_minutes": 12.0,
        **{f"x{n:02d}": "e" * 240 for n in range(64)},
    }  # fmt: skip
    return client.encode(), json.dumps(body).encode()


async def test_a_batch_of_requests_at_every_cap_is_scored_while_livez_answers(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    app_id = f"caps-{run_id}"
    names = _names(run_id, app_id)
    source, bootstrap = names["prediction_requests"], kafka_broker.bootstrap
    fates = [names["predictions"], names["requests_throttled"], names["requests_invalid"]]
    env = {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
           "TEST_BUNDLE_DIR": str(bundle_dir)}  # fmt: skip
    worker = start_worker(env, module=MODULE, wait_topics={source: PARTITIONS})
    worker.wait_ready()
    unanswered: list[object] = []
    polls = 0
    stop = asyncio.Event()

    async def watch_liveness() -> None:
        nonlocal polls
        while not stop.is_set():
            body = await asyncio.to_thread(worker.get, "/livez")
            polls += 1
            if (body or {}).get("status") != "alive":
                unanswered.append(body)

    watcher = asyncio.create_task(watch_liveness())
    try:
        await produce(bootstrap, source, [_worst(i) for i in range(64)])
        got = await read_until(bootstrap, fates, lambda r: sum(map(len, r.values())) >= 64)
    finally:
        stop.set()
        await watcher
    scored = sorted(_rid(r) for r in got[names["predictions"]])
    assert scored == [f"w{i:02d}" for i in range(64)]
    assert got[names["requests_invalid"]] == [] and got[names["requests_throttled"]] == []
    assert polls > 0 and unanswered == []
