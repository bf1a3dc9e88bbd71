"""The /alerts and /reports/drift pages, answered by every worker from its own followers.

The alert states are sharded by service over the workers and a page must cover every
service, so forwarding to one key's owner (Faust's ``table_route``) cannot answer it.
Instead each worker runs a follower: a plain consumer, outside the consumer group, that
reads the alert table's changelog (the latest AlertState of every service) and the
drift-reports topic from the beginning and folds them into memory. Each page is then
computed locally, with the same ``summarize`` the engine uses, on any worker. The
followed topics are small: the changelog is compacted and holds one state per service.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.alerts import alert_engine
from stream_app.app import StreamApp
from stream_app.monitoring.alert_catalog import alerts_overview
from stream_app.monitoring.alerts import AlertState
from stream_app.monitoring.report_views import DriftReportsView

__all__ = ["ALERT_SUMMARY_WINDOW", "install"]

ALERT_SUMMARY_WINDOW = timedelta(hours=24)
_log = logging.getLogger(__name__)


class _Views:
    """The worker's copies: AlertState per service and the drift reports."""

    def __init__(self) -> None:
        self.alert_states: dict[str, AlertState] = {}
        self.drift = DriftReportsView()
        self.caught_up = False

    def apply(self, topic: str, alerts_topic: str, key: bytes | None, value: bytes | None) -> None:
        if topic == alerts_topic:
            if key is None:
                return
            if value is None:  # a tombstone: the state was deleted
                self.alert_states.pop(key.decode(errors="replace"), None)
                return
            self.alert_states[key.decode(errors="replace")] = AlertState.from_dict(
                json.loads(value)
            )
        elif value is not None:
            self.drift = self.drift.add(json.loads(value))


async def _partitions(
    consumer: AIOKafkaConsumer, topics: list[str], count: int
) -> list[TopicPartition]:
    """Every partition of ``topics`` (``count`` each, as declared), once they all exist."""
    while not set(topics) <= await consumer.topics():
        await asyncio.sleep(0.5)
    return [TopicPartition(topic, p) for topic in topics for p in range(count)]


async def _follow(app: StreamApp, views: _Views, alerts_topic: str, drift_topic: str) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=app.settings.bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = await _partitions(
            consumer, [alerts_topic, drift_topic], app.settings.partitions
        )
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    try:
                        views.apply(r.topic, alerts_topic, r.key, r.value)
                    except (ValueError, KeyError, TypeError) as error:
                        _log.warning(
                            "dashboards: skipped a %s message (%s)", r.topic, type(error).__name__
                        )
            if not views.caught_up:
                positions = [await consumer.position(tp) for tp in partitions]
                views.caught_up = all(
                    p >= ends[tp] for p, tp in zip(positions, partitions, strict=True)
                )
    finally:
        await consumer.stop()


def install(app: StreamApp) -> None:
    """Add the followers and the /alerts and /reports/drift pages."""
    views = _Views()
    config = alert_engine(app).config
    engines = app.tables["alert-engines"]
    alerts_topic = engines.changelog_topic.get_topic_name()
    drift_topic = app.kafka_topics.drift_reports.get_topic_name()

    async def follow_reports() -> None:
        while True:
            try:
                await _follow(app, views, alerts_topic, drift_topic)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a page must not freeze for good
                # Reading again from the start is safe: states are replaced by key and
                # the drift view ignores reports it holds.
                _log.warning("dashboards: follower failed (%s); restarting", type(error).__name__)
                views.caught_up = False
                await asyncio.sleep(2.0)

    app.task(follow_reports)

    @app.page("/alerts")
    async def alerts_page(web: Any, request: Any) -> Any:
        overview = alerts_overview(views.alert_states, config, ALERT_SUMMARY_WINDOW)
        return web.json({"caught_up": views.caught_up, **overview})

    @app.page("/reports/drift")
    async def drift_page(web: Any, request: Any) -> Any:
        return web.json({"caught_up": views.caught_up, **views.drift.to_dict()})
