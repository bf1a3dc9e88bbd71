"""The real intake agent's step (routing, rate limit, scoring, what each fate sends), run
by its batch driver with an in-memory store and sink instead of Kafka."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agents import build_pipeline
from agents.driver import BatchDriver
from agents.intake import ORIGIN_HEADER
from stream_app.app import StreamApp, create_app
from stream_app.config import load_settings
from stream_app.kafka_admin import ConfigDrift
from stream_app.lifecycle.bundle import load_bundle
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.partitioner import default_partition
from stream_app.topics import TIMESTAMP_TYPE
from tests.utils.driver import Journal

PARTITIONS = 4
CLIENT = "client-7"
HOME = default_partition(CLIENT.encode(), PARTITIONS)
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> StreamApp:
    settings = load_settings({}, app_id="unit", partitions=PARTITIONS, rate_limit_max_requests=2)
    built = build_pipeline(create_app(settings))
    directory = Path(tmp_path_factory.mktemp("bundle")) / "conversion-1.0.0"
    train_demo_bundle(directory, name="conversion", version="1.0.0", n_rows=300)
    built.serving.install(load_bundle(directory), None)
    return built


@pytest.fixture
def intake(app: StreamApp) -> Iterator[tuple[BatchDriver[Any, Any, Any], Journal]]:
    driver: BatchDriver[Any, Any, Any] = app.drivers["intake"]
    journal = Journal()
    store, sink = driver.store, driver.sink
    driver.store, driver.sink = journal, journal
    yield driver, journal
    driver.store, driver.sink = store, sink


def request(rid: str, second: float | None, client: str = CLIENT) -> bytes:
    """A request stamped ``second`` after AT (no timestamp field when None)."""
    body: dict[str, Any] = {
        "request_id": rid, "client_id": client, "user_id": "USR00001", "age": 30,
        "purchase_history": [12.0], "category_preference": "home",
        "session_duration_minutes": 4.0,
    }  # fmt: skip
    if second is not None:
        body["timestamp"] = datetime.fromtimestamp(AT + second, UTC).isoformat()
    return json.dumps(body).encode()


def record(
    app: StreamApp,
    value: bytes,
    key: str | None,
    partition: int,
    offset: int,
    headers: Any = None,
    arrived: float = AT + 60,
) -> Any:
    """A record of prediction-requests that reached the broker at ``arrived``."""
    topic = app.kafka_topics.prediction_requests.get_topic_name()
    message = SimpleNamespace(topic=topic, partition=partition, offset=offset,
                              timestamp=arrived, headers=headers)  # fmt: skip
    return SimpleNamespace(key=None if key is None else key.encode(), value=value, message=message)


def short(app: StreamApp, topic: str) -> str:
    names = {t.get_topic_name(): attr for attr, t in vars(app.kafka_topics).items()}
    return names[topic]


async def test_one_batch_gives_every_fate_and_counts_after_the_outputs(
    app: StreamApp, intake: tuple[BatchDriver[Any, Any, Any], Journal]
) -> None:
    driver, journal = intake
    batch = [
        record(app, b"{oops", None, 0, 0),
        record(app, request("moved", 0, client="client-9"), None, 0, 1),
        *(record(app, request(f"r{i}", i), CLIENT, HOME, 10 + i, arrived=AT + 60 + i)
          for i in range(3)),
    ]  # fmt: skip
    await driver.process(batch)
    sent = [(short(app, m.topic), m.derived) for m in journal.messages]
    assert sent == [
        ("requests_invalid", False),
        ("requests_rekeyed", False),
        ("predictions", False), ("prediction_logs", False),
        ("predictions", False), ("prediction_logs", False),
        ("requests_throttled", False),
        # derived, once the outputs are acknowledged, in request order: the counts and the
        # join's copies of the predictions (the batch's summary goes with the first scored)
        ("monitor_events", True), ("exposures", True), ("monitor_events", True),
        ("exposures", True), ("monitor_events", True),
    ]  # fmt: skip
    exposures = [m for m in journal.messages if short(app, m.topic) == "exposures"]
    predictions = [m for m in journal.messages if short(app, m.topic) == "predictions"]
    exposed = [(m.key, json.loads(m.value or b"")) for m in exposures]
    assert exposed == [
        (m.key, {**{k: p[k] for k in ("request_id", "variant", "model_version", "timestamp")},
                 "serving_version": "1.0.0", "challenger_version": None})
        for m in predictions for p in [json.loads(m.value or b"")]
    ]  # fmt: skip
    monitor = [
        json.loads(m.value or b"")
        for m in journal.messages
        if short(app, m.topic) == "monitor_events"
    ]
    assert [m["kind"] for m in monitor] == ["rejected", "scored", "throttled"]
    assert monitor[1]["scored"] == 2
    moved = journal.messages[1]
    assert moved.key == b"client-9" and moved.timestamp == AT + 60  # keeps its own time
    assert dict(moved.headers) == {ORIGIN_HEADER: f"{batch[1].message.topic}:0@1".encode()}
    throttled = json.loads(journal.messages[6].value or b"")
    # Judged at its arrival, 2 s after r0's: r0 leaves the window 58 s later.
    assert (throttled["request"]["request_id"], throttled["retry_after_seconds"]) == ("r2", 58.0)
    row = journal.rows[CLIENT.encode()]
    assert row["offsets"] == {f"{batch[2].message.topic}:{HOME}": 12}


async def test_an_origin_header_on_the_public_topic_hides_no_request(
    app: StreamApp, intake: tuple[BatchDriver[Any, Any, Any], Journal]
) -> None:
    driver, journal = intake
    client = "client-11"
    home = default_partition(client.encode(), PARTITIONS)
    topic = app.kafka_topics.prediction_requests.get_topic_name()
    # Trusted, this header would mark every later request of the client as decided.
    forged = [(ORIGIN_HEADER, f"{topic}:{home}@999999".encode())]
    await driver.process([record(app, request("f1", 0, client), client, home, 5, forged)])
    await driver.process([record(app, request("f2", 1, client), client, home, 6)])
    predicted = [
        json.loads(m.value or b"")["request_id"]
        for m in journal.messages
        if short(app, m.topic) == "predictions"
    ]
    assert predicted == ["f1", "f2"]
    assert journal.rows[client.encode()]["offsets"] == {f"{topic}:{home}": 6}


MONTH = 30 * 86_400


def _stamps(how: str, n: int) -> list[float | None]:
    """Seconds after AT that a client writes into a burst's timestamps to dodge the limit;
    the burst itself reaches the broker within 0.1 s, 60 s after AT."""
    if how == "past, spaced by 61 s":
        return [-MONTH + 61.0 * i for i in range(n)]
    if how == "ahead, within the allowed skew":
        return [60 + 50.0 * i for i in range(n)]  # at most 250 s ahead of the broker
    if how == "none":
        return [None] * n
    draws = random.Random(7)
    return [60 - draws.uniform(0, MONTH) for _ in range(n)]


@pytest.mark.parametrize(
    "how", ["past, spaced by 61 s", "ahead, within the allowed skew", "none", "random"]
)
async def test_a_burst_is_judged_by_when_it_reached_the_broker_not_by_its_timestamps(
    app: StreamApp, intake: tuple[BatchDriver[Any, Any, Any], Journal], how: str
) -> None:
    driver, journal = intake
    burst = [
        record(app, request(f"b{i}", stamp), CLIENT, HOME, 100 + i, arrived=AT + 60 + i / 100)
        for i, stamp in enumerate(_stamps(how, 6))
    ]
    await driver.process(burst)
    fates = [(short(app, m.topic), json.loads(m.value or b"")) for m in journal.messages]
    scored = [v["request_id"] for topic, v in fates if topic == "predictions"]
    throttled = [v["request"]["request_id"] for topic, v in fates if topic == "requests_throttled"]
    assert (scored, throttled) == (["b0", "b1"], ["b2", "b3", "b4", "b5"])  # the limit is 2


async def test_a_restart_in_the_middle_of_a_burst_keeps_its_window(
    app: StreamApp, intake: tuple[BatchDriver[Any, Any, Any], Journal]
) -> None:
    driver, journal = intake
    stamps = _stamps("past, spaced by 61 s", 4)
    burst = [
        record(app, request(f"b{i}", stamp), CLIENT, HOME, 200 + i, arrived=AT + 60 + i)
        for i, stamp in enumerate(stamps)
    ]
    await driver.process(burst[:1])
    # A new worker reads the table back from its changelog: only the rows carry over.
    restarted = Journal(rows=dict(journal.rows))
    driver.store, driver.sink = restarted, restarted
    await driver.process(burst[1:])
    fates = [short(app, m.topic) for m in restarted.messages if not m.derived]
    assert fates == ["predictions", "prediction_logs", "requests_throttled", "requests_throttled"]


class Steps:
    """A wall clock that reads ``start``, then 1/64 s more at each reading (exact in
    binary floating point, so the latencies below are exact too)."""

    def __init__(self, start: float) -> None:
        self.readings = 0
        self.start = start

    def __call__(self) -> float:
        self.readings += 1
        return self.start + (self.readings - 1) / 64


@pytest.fixture
def worker_clock(app: StreamApp) -> Iterator[None]:
    clock, drift = app.serving.clock, app.clock_drift
    yield
    app.serving.clock, app.clock_drift = clock, drift


def latencies(app: StreamApp, journal: Journal) -> dict[str, dict[str, float]]:
    """request_id -> latency_ms of its prediction and of its prediction log."""
    out: dict[str, dict[str, float]] = {}
    for m in journal.messages:
        topic = short(app, m.topic)
        if topic in ("predictions", "prediction_logs"):
            value = json.loads(m.value or b"")
            out.setdefault(value["request_id"], {})[topic] = value["latency_ms"]
    return out


async def test_a_prediction_s_latency_runs_from_its_own_arrival_at_the_broker(
    app: StreamApp, intake: tuple[BatchDriver[Any, Any, Any], Journal], worker_clock: None
) -> None:
    driver, journal = intake
    app.serving.clock = lambda: AT + 61.0  # the scorer is done at AT + 61 s
    client = "client-21"
    home = default_partition(client.encode(), PARTITIONS)
    batch = [
        record(app, request("early", 0, client=client), client, home, 0, arrived=AT + 60.5),
        record(app, request("late", 0, client=client), client, home, 1, arrived=AT + 60.875),
    ]
    await driver.process(batch)
    assert latencies(app, journal) == {
        "early": {"predictions": 500.0, "prediction_logs": 500.0},
        "late": {"predictions": 125.0, "prediction_logs": 125.0},
    }


async def test_on_a_topic_whose_producers_choose_the_time_latency_runs_from_the_worker_s_receipt(
    app: StreamApp, intake: tuple[BatchDriver[Any, Any, Any], Journal], worker_clock: None
) -> None:
    driver, journal = intake
    topic = app.kafka_topics.prediction_requests.get_topic_name()
    app.clock_drift = [ConfigDrift(topic, TIMESTAMP_TYPE, "LogAppendTime", "CreateTime")]
    clock = Steps(AT + 90 * 86_400)  # a day replayed three months after it happened
    app.serving.clock = clock
    client = "client-22"
    home = default_partition(client.encode(), PARTITIONS)
    batch = [  # Kafka timestamps of the original day, as a replay writes them
        record(app, request(f"d{i}", 0, client=client), client, home, i, arrived=AT + 60 + i)
        for i in range(2)
    ]
    await driver.process(batch)
    # Readings: d0 taken by the batch, d1 taken, then the model call done (one variant).
    assert clock.readings == 3
    assert latencies(app, journal) == {
        "d0": {"predictions": 2000 / 64, "prediction_logs": 2000 / 64},
        "d1": {"predictions": 1000 / 64, "prediction_logs": 1000 / 64},
    }
