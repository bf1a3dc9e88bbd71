"""The real alert agent's step, run by its batch driver with an in-memory store and sink:
a quiet service with nothing firing is forgotten after the idle period, a firing one is
kept until it resolves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from agents import build_pipeline
from agents.driver import BatchDriver
from stream_app.app import StreamApp, create_app
from stream_app.config import load_settings
from tests.utils.driver import Journal

IDLE = 600.0
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def app() -> StreamApp:
    settings = load_settings({}, app_id="alerts-unit", partitions=1, alert_idle_seconds=IDLE)
    return build_pipeline(create_app(settings))


def metric(app: StreamApp, service: str, offset: int, at: datetime, **values: float) -> Any:
    topic = app.kafka_topics.service_metrics.get_topic_name()
    value = json.dumps({"timestamp": at.isoformat(), **values}).encode()
    message = SimpleNamespace(topic=topic, partition=0, offset=offset,
                              timestamp=at.timestamp(), headers=None)  # fmt: skip
    return SimpleNamespace(key=service.encode(), value=value, message=message)


async def test_a_quiet_service_is_forgotten_and_a_firing_one_kept(app: StreamApp) -> None:
    driver: BatchDriver[Any, Any, Any] = app.drivers["alert-engines"]
    journal = Journal()
    store, sink = driver.store, driver.sink
    driver.store, driver.sink = journal, journal
    try:
        await driver.process([
            metric(app, "quiet", 0, T0, error_rate=0.001),
            metric(app, "burning", 1, T0, error_rate=0.5),
        ])  # fmt: skip
        assert set(journal.rows) == {b"quiet", b"burning"}
        # Half the idle period later nothing is due yet.
        await driver.process([metric(app, "other", 2, T0 + timedelta(seconds=IDLE / 2))])
        assert journal.rows[b"quiet"] is not None
        # Twice the idle period later the quiet service is gone, the firing one stays.
        later = T0 + timedelta(seconds=2 * IDLE)
        await driver.process([metric(app, "other", 3, later, error_rate=0.001)])
        assert journal.rows[b"quiet"] is None
        assert journal.rows[b"burning"] is not None
        # It still resolves when it comes back.
        await driver.process([metric(app, "burning", 4, later, error_rate=0.001)])
        fired = [json.loads(m.value or b"") for m in journal.messages]
        kinds = [(a["service"], a["kind"]) for a in fired]
        assert kinds == [("burning", "firing"), ("burning", "resolved")]
    finally:
        driver.store, driver.sink = store, sink
