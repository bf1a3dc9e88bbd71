"""Silence is news: an outage of all requests closes the app's metric windows and fires
``requests_absent``; it resolves when requests return. Through a worker on the real
broker, under both guarantees, with 2-second windows.

The requests are live (stamped now), sent by a background producer until the state the
test waits for shows on a topic; every request then leaves through exactly one fate topic.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import internal_topic_names, topic_names
from tests.utils.kafka_io import Record, read_until
from tests.utils.worker import WorkerProcess

pytestmark = pytest.mark.integration

WINDOW, GRACE = 2, 2  # seconds: silent after 4 s without a request
HANG = 120.0  # a guard against a hang, not a measure of speed


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=400)
    return out


class Traffic:
    """Live requests, one every ``every`` seconds while running, each with its own id."""

    def __init__(self, bootstrap: str, topic: str, every: float = 0.05) -> None:
        self.bootstrap, self.topic, self.every = bootstrap, topic, every
        self.sent: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            while not stop.is_set():
                rid = f"s{len(self.sent):05d}"
                client = f"client-{zlib.crc32(rid.encode()) % 50}"
                body = {
                    "request_id": rid, "client_id": client, "user_id": f"USR{rid}",
                    "timestamp": datetime.now(UTC).isoformat(), "age": 30 + len(self.sent) % 40,
                    "purchase_history": [12.0, 3.5], "category_preference": "home",
                    "session_duration_minutes": 4.0,
                }  # fmt: skip
                await producer.send_and_wait(self.topic, json.dumps(body).encode(), client.encode())
                self.sent.append(rid)
                await asyncio.sleep(self.every)
        finally:
            await producer.stop()

    async def until(self, read: Callable[[], Any]) -> Any:
        """Send requests until ``read()`` (a wait on topics) returns; return what it read."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        try:
            return await read()
        finally:
            stop.set()
            await task


def _values(records: list[Record]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_silence_for_two_windows_fires_requests_absent_and_traffic_resolves_it(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
    guarantee: str,
) -> None:
    app_id = f"silence-{run_id}"
    settings = load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id)
    names = {**topic_names(settings), **internal_topic_names(settings)}
    worker = start_worker(
        {
            "STREAM_APP_ID": app_id,
            "STREAM_PARTITIONS": "1",
            "STREAM_PROCESSING_GUARANTEE": guarantee,
            "STREAM_METRICS_WINDOW_SECONDS": str(WINDOW),
            "STREAM_WINDOW_GRACE_SECONDS": str(GRACE),
            "STREAM_DRIFT_WINDOW_SECONDS": "60",
            "STREAM_AB_REPORT_INTERVAL_SECONDS": "60",
            "STREAM_SILENCE_TICK_SECONDS": "0.5",
            "STREAM_RATE_LIMIT_MAX_REQUESTS": "100000",
            "TEST_BUNDLE_DIR": str(bundle_dir),
        },
        module="tests.integration.pipeline_app",
        wait_topics={names["prediction_requests"]: 1},
    )
    worker.wait_ready()
    bootstrap = kafka_broker.bootstrap
    metrics_topic, alerts_topic = names["service_metrics"], names["alerts"]
    traffic = Traffic(bootstrap, names["prediction_requests"])

    def windows(out: dict[str, list[Record]]) -> list[dict[str, Any]]:
        return [m for m in _values(out[metrics_topic]) if m["service"] == app_id]

    def absent(out: dict[str, list[Record]], kind: str) -> list[dict[str, Any]]:
        return [a for a in _values(out[alerts_topic])
                if a["rule"] == "requests_absent" and a["kind"] == kind]  # fmt: skip

    def read(done: Callable[[dict[str, list[Record]]], bool]) -> Any:
        topics = [metrics_topic, alerts_topic]
        return lambda: read_until(bootstrap, topics, done, idle_seconds=0, timeout=HANG)

    # Traffic until a window with requests has closed: the rule has its history.
    await traffic.until(read(lambda out: any(w["requests"] > 0 for w in windows(out))))
    before = len(traffic.sent)

    # Silence: no request is sent while the test waits for two empty windows after the
    # last one with requests, and for the alert.
    def silent(out: dict[str, list[Record]]) -> tuple[list[dict[str, Any]], int]:
        closed = windows(out)
        last = max(i for i, w in enumerate(closed) if w["requests"] > 0)
        return closed, last

    def fired(out: dict[str, list[Record]]) -> bool:
        closed, last = silent(out)
        alerts = absent(out, "firing") + absent(out, "resolved")
        latest = max(alerts, key=lambda a: _at(a["timestamp"]), default=None)
        return len(closed) >= last + 3 and latest is not None and latest["kind"] == "firing"

    out = await read(fired)()
    closed, last = silent(out)
    # The silence closed the window the traffic left open as it was, then empty ones:
    # every request sent is in a window or reported late, none lost on the way.
    assert [w["requests"] for w in closed[last + 1 :]] == [0] * (len(closed) - last - 1)
    counted = closed[: last + 3]
    assert sum(w["requests"] + w["late_events"] for w in counted) == before
    firing = max(absent(out, "firing"), key=lambda a: _at(a["timestamp"]))
    assert (firing["service"], firing["severity"], firing["threshold"]) == (
        app_id, "critical", pytest.approx(0.9),
    )  # fmt: skip
    # It fired at the latest with the first empty window (earlier when the last window
    # with requests, cut short by the silence, held a tenth of the mean or less).
    assert _at(firing["timestamp"]) <= _at(closed[last + 1]["timestamp"])

    # Traffic returns: sent until that alert resolves.
    def resolved(out: dict[str, list[Record]]) -> bool:
        return any(a["fingerprint"] == firing["fingerprint"] for a in absent(out, "resolved"))

    out = await traffic.until(read(resolved))
    [back] = [a for a in absent(out, "resolved") if a["fingerprint"] == firing["fingerprint"]]
    assert back["value"] < 0.9
    assert _at(back["timestamp"]) > _at(closed[last + 2]["timestamp"])

    # Conservation: every request sent leaves through exactly one fate topic (all are
    # valid and under the rate limit, so through predictions).
    fates = [names["predictions"], names["requests_invalid"], names["requests_throttled"]]

    def all_out(got: dict[str, list[Record]]) -> bool:
        return sum(len(got[t]) for t in fates) >= len(traffic.sent)

    got = await read_until(bootstrap, fates, all_out, timeout=HANG)
    assert got[names["requests_invalid"]] == got[names["requests_throttled"]] == []
    ids = Counter((r.key or b"").decode() for r in got[names["predictions"]])
    assert set(ids) == set(traffic.sent)
    assert set(ids.values()) == {1}
    # A SIGTERM ends the worker by itself under both guarantees (under exactly_once its
    # consumer's stop once failed on a second commit and a thread kept the process alive).
    assert worker.stop() == 0, worker.log_tail()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
