"""A worker killed with SIGKILL twice mid-stream, and restarted each time, loses nothing.

Under at_least_once every request reaches exactly one fate topic at least once (the
duplicates are counted and printed); under exactly_once exactly once. The monitoring
that follows a kill counts what was delivered: the drift windows' request counts and the
A/B exposures equal the delivered predictions under exactly_once, and exceed them by no
more than the duplicates under at_least_once.
"""

from __future__ import annotations

import json
import signal
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from tests.utils.kafka_io import Record, produce, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
REQUESTS = 3000
HALF = REQUESTS // 2
CLOSING = "closing"  # one last request, later in event time: it closes every window
MODULE = "tests.integration.pipeline_app"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kill-bundles")
    for version, seed in (("1.0.0", 1), ("1.1.0", 2)):
        train_demo_bundle(root / version, name="conversion", version=version, seed=seed,
                          n_rows=400)  # fmt: skip
    return root / "1.0.0", root / "1.1.0"


def _request(rid: str, at: datetime, age: int) -> tuple[bytes, bytes]:
    client = f"client-{zlib.crc32(rid.encode()) % 300}"
    body = {
        "request_id": rid, "client_id": client, "user_id": f"USR{rid}",
        "timestamp": at.isoformat(), "age": age, "purchase_history": [12.0, 3.5],
        "category_preference": "home", "session_duration_minutes": 4.0,
    }  # fmt: skip
    return client.encode(), json.dumps(body).encode()


def _start_of_traffic() -> datetime:
    """A minute boundary 15 minutes ago: the traffic and its closing request lie in the
    past (nothing is refused as stamped ahead) and within the topics' retention."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=15)


def _requests(t0: datetime, start: int, stop: int) -> list[tuple[bytes | None, bytes]]:
    # 10 requests per second of event time: 3,000 span five one-minute windows. Every
    # 40th is invalid (age 5) so that two fate topics take part.
    return [
        _request(f"r{i:05d}", t0 + timedelta(seconds=i / 10), 5 if i % 40 == 7 else 30 + i % 50)
        for i in range(start, stop)
    ]


def _event_time_ms(value: bytes) -> int:
    # The Kafka timestamp is the event time, as for any replay of a past day: rejected
    # requests are counted by the monitors at their Kafka timestamp.
    return int(datetime.fromisoformat(json.loads(value)["timestamp"]).timestamp() * 1000)


async def _send(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    await produce(bootstrap, topic, messages, timestamp_of=_event_time_ms)


def _rid(record: Record) -> str:
    value = json.loads(record.value)
    return str(value.get("request", value)["request_id"])


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_worker_killed_twice_mid_stream_loses_nothing(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundles: tuple[Path, Path],
    guarantee: str,
) -> None:
    app_id = f"kill-{run_id}"
    names = topic_names(load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id))
    source, bootstrap = names["prediction_requests"], kafka_broker.bootstrap
    fates = [names["predictions"], names["requests_invalid"], names["requests_throttled"]]
    env = {
        "STREAM_APP_ID": app_id, "STREAM_PARTITIONS": str(PARTITIONS),
        "STREAM_PROCESSING_GUARANTEE": guarantee, "STREAM_RATE_LIMIT_MAX_REQUESTS": "100000",
        "STREAM_DRIFT_WINDOW_SECONDS": "60", "STREAM_METRICS_WINDOW_SECONDS": "60",
        "STREAM_AB_REPORT_INTERVAL_SECONDS": "60", "STREAM_WINDOW_GRACE_SECONDS": "300",
        "TEST_BUNDLE_DIR": str(bundles[0]), "TEST_CHALLENGER_DIR": str(bundles[1]),
    }  # fmt: skip

    def start() -> WorkerProcess:
        worker = start_worker(env, module=MODULE, wait_topics={source: PARTITIONS})
        worker.wait_ready()
        return worker

    async def decided(n: int) -> int:
        got = await read_until(
            bootstrap, fates, lambda g: len({_rid(r) for t in fates for r in g[t]}) >= n,
            idle_seconds=0, timeout=300,
        )  # fmt: skip
        return len({_rid(r) for t in fates for r in got[t]})

    t0 = _start_of_traffic()
    # Each half is a backlog when the worker meets it; the worker is killed as soon as
    # the first of it is decided, so the kill lands mid-stream however fast it runs.
    worker = start()
    await _send(bootstrap, source, _requests(t0, 0, HALF))
    await decided(1)
    _kill(worker)
    worker = start()
    before = await decided(HALF)
    await _send(bootstrap, source, _requests(t0, HALF, REQUESTS))
    await decided(before + 1)
    _kill(worker)
    last = start()
    try:
        got = await read_until(
            bootstrap, fates, lambda g: len({_rid(r) for t in fates for r in g[t]}) >= REQUESTS,
            timeout=300,
        )  # fmt: skip
    except TimeoutError as error:  # say what the worker was doing
        raise AssertionError(f"{error}\nthe last worker's log:\n{last.log_tail(80)}") from error

    ids = {topic: [_rid(r) for r in got[topic]] for topic in fates}
    distinct = {topic: set(found) for topic, found in ids.items()}
    duplicates = sum(len(found) for found in ids.values()) - sum(map(len, distinct.values()))
    print(f"{guarantee}: {REQUESTS} requests, {duplicates} duplicates after two SIGKILLs")
    everything = {f"r{i:05d}" for i in range(REQUESTS)}
    assert set().union(*distinct.values()) == everything
    assert sum(map(len, distinct.values())) == REQUESTS  # no request in two fate topics
    assert distinct[names["requests_invalid"]] == {f"r{i:05d}" for i in range(7, REQUESTS, 40)}
    if guarantee == "exactly_once":
        assert duplicates == 0

    scored = len(distinct[names["predictions"]])
    repeats = len(ids[names["predictions"]]) - scored
    drift, exposures = await _monitoring(bootstrap, names, t0)
    if guarantee == "exactly_once":
        assert (drift, exposures) == (scored, scored)
    else:
        assert scored <= drift <= scored + repeats
        assert scored <= exposures <= scored + repeats


def _kill(worker: WorkerProcess) -> None:
    assert worker.process is not None
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(30)


async def _monitoring(bootstrap: str, names: dict[str, str], t0: datetime) -> tuple[int, int]:
    """Requests counted by the drift windows and A/B exposures of the five minutes."""
    # 11 minutes in: past the last window's end (5 minutes) plus the grace (5 minutes).
    closing = _request(CLOSING, t0 + timedelta(minutes=11), 30)
    await _send(bootstrap, names["prediction_requests"], [closing])
    drift_topic, ab_topic = names["drift_reports"], names["ab_reports"]

    end = (t0 + timedelta(minutes=5)).isoformat()

    def closed(got: dict[str, list[Record]]) -> bool:
        ends = {json.loads(r.value)["interval_end"] for r in got[ab_topic]}
        return len(got[drift_topic]) >= 5 and end in ends

    got = await read_until(bootstrap, [drift_topic, ab_topic], closed, timeout=300)
    reports = [json.loads(r.value) for r in got[drift_topic]]
    assert all(r["late_events"] == 0 for r in reports)
    drift = sum(r["requests"] for r in reports)
    (last,) = [json.loads(r.value) for r in got[ab_topic]
               if json.loads(r.value)["interval_end"] == end]  # fmt: skip
    return drift, int(last["report"]["n_a"]) + int(last["report"]["n_b"])
