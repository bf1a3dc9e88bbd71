"""Silence through the real steps and their batch drivers (in-memory store and sink):
ticks on monitor-events close the app's metric windows, the windows' requests fire
``requests_absent`` in the alert step, and it resolves when requests come back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from agents import build_pipeline
from agents.driver import BatchDriver, Message
from schemas.codec import encode
from schemas.monitor import RequestCounted, SilenceTick
from stream_app.app import StreamApp, create_app
from stream_app.config import load_settings
from tests.utils.driver import Journal

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def app() -> StreamApp:
    settings = load_settings(
        {}, app_id="silence-unit", partitions=1, metrics_window_seconds=60,
        drift_window_seconds=60, ab_report_interval_seconds=60, window_grace_seconds=10,
    )  # fmt: skip
    return build_pipeline(create_app(settings))


class Monitor:
    """Records on monitor-events: the Kafka timestamp is when the record was sent."""

    def __init__(self, app: StreamApp) -> None:
        self.topic = app.kafka_topics.monitor_events.get_topic_name()
        self.key = app.settings.model_name.encode()
        self.offset = 0

    def record(self, value: bytes, sent: datetime) -> Any:
        message = SimpleNamespace(topic=self.topic, partition=0, offset=self.offset,
                                  timestamp=sent.timestamp(), headers=None)  # fmt: skip
        self.offset += 1
        return SimpleNamespace(key=self.key, value=value, message=message)

    def rejected(self, second: float) -> Any:
        at = T0 + second * SECOND  # event time = arrival, as in production
        return self.record(encode(RequestCounted(kind="rejected", timestamp=at)), at)

    def tick(self, second: float) -> Any:
        return self.record(encode(SilenceTick()), T0 + second * SECOND)


def _as_records(messages: Sequence[Message], start: int) -> list[Any]:
    """Service-metrics messages as records of that topic, stamped when they were sent."""
    out = []
    for i, m in enumerate(messages):
        sent = datetime.fromisoformat(json.loads(m.value or b"")["timestamp"]).timestamp()
        message = SimpleNamespace(topic=m.topic, partition=0, offset=start + i,
                                  timestamp=sent, headers=None)  # fmt: skip
        out.append(SimpleNamespace(key=m.key, value=m.value, message=message))
    return out


async def test_ticks_close_the_windows_of_a_silence_and_fire_requests_absent(
    app: StreamApp,
) -> None:
    drivers: dict[str, BatchDriver[Any, Any, Any]] = app.drivers
    windows, alerts = drivers["service-metric-windows"], drivers["alert-engines"]
    saved = [(d, d.store, d.sink) for d in drivers.values()]
    journals = {name: Journal() for name in drivers}
    for name, driver in drivers.items():
        driver.store = driver.sink = journals[name]
    monitor = Monitor(app)
    try:
        batches = [
            [monitor.rejected(s) for s in range(0, 120, 3)],  # two minutes of requests
            [monitor.tick(s) for s in range(130, 260, 10)],  # silence, ticked every 10 s
            [monitor.rejected(s) for s in range(261, 400, 3)],  # traffic back
        ]
        for batch in batches:
            for record in batch:
                for name in ("service-metric-windows", "drift-windows", "ab-report"):
                    await drivers[name].process([record])
        metrics = [json.loads(m.value or b"") for m in journals["service-metric-windows"].messages]
        assert [(m["timestamp"][11:19], m["requests"]) for m in metrics] == [
            ("10:01:00", 20),  # closed by the traffic
            # The last request came at 117 s; the tick of 190 s is 73 s later (a window
            # plus the grace is 70 s): the watermark stands at 190 s, past two windows.
            ("10:02:00", 20),
            ("10:03:00", 0),
            ("10:04:00", 0),  # the tick of 250 s: one empty window per minute of silence
            ("10:05:00", 13),  # traffic back from 261 s, closed by itself
            ("10:06:00", 20),
        ]
        # The drift and A/B steps pass ticks over without counting them as skipped.
        for name in ("drift-windows", "ab-report"):
            assert drivers[name].skips.counts == {}

        await alerts.process(_as_records(journals["service-metric-windows"].messages, 0))
        fired = [json.loads(m.value or b"") for m in journals["alert-engines"].messages]
        absent = [(a["kind"], a["timestamp"][11:19], a["value"]) for a in fired
                  if a["rule"] == "requests_absent"]  # fmt: skip
        # Zero requests fire at once; 13 against the trailing 20 (a drop of 0.35) resolve.
        assert absent == [("firing", "10:03:00", 1.0), ("resolved", "10:05:00", 0.35)]
        assert windows.skips.counts == {}
    finally:
        for driver, store, sink in saved:
            driver.store, driver.sink = store, sink
