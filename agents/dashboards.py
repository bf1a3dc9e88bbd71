"""The /alerts and /reports/drift pages, answered by every worker from its own followers.

The alert states are sharded by service over the workers and a page must cover every
service, so forwarding to one key's owner (Faust's ``table_route``) cannot answer it.
Instead each worker runs a follower: a plain consumer, outside the consumer group, that
reads the alert table's changelog (the latest AlertState of every service) and the
drift-reports topic from the beginning and folds them into memory. Each page is then
computed locally, with the same ``summarize`` the engine uses, on any worker. The
followed topics are small: the changelog is compacted and holds one state per service,
and the alert table forgets quiet services; the drift view keeps at most
``STREAM_PAGE_MAX_KEYS`` models.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from agents.alerts import alert_engine
from agents.follow import TopicFollower
from stream_app.app import StreamApp
from stream_app.metrics import gauge_family
from stream_app.monitoring.alert_catalog import alerts_overview
from stream_app.monitoring.alerts import AlertState
from stream_app.monitoring.levels import alerts_firing, drift_levels
from stream_app.monitoring.report_views import DriftReportsView

__all__ = ["ALERT_SUMMARY_WINDOW", "install"]

ALERT_SUMMARY_WINDOW = timedelta(hours=24)


class _Views:
    """The worker's copies: AlertState per service and the drift reports.

    Reading a record twice (after the follower restarts) is safe: states are replaced by
    key and the drift view ignores reports it holds.
    """

    def __init__(self, alerts_topic: str, max_models: int) -> None:
        self.alerts_topic = alerts_topic
        self.alert_states: dict[str, AlertState] = {}
        self.drift = DriftReportsView(max_models=max_models)

    def apply(self, record: Any) -> None:
        key, value = record.key, record.value
        if record.topic == self.alerts_topic:
            if key is None:
                return
            # A row is {"offsets": ..., "state": ...} (agents/driver.py); a tombstone or
            # a row without state means the service was forgotten.
            state = None if value is None else json.loads(value).get("state")
            if state is None:
                self.alert_states.pop(key.decode(errors="replace"), None)
                return
            self.alert_states[key.decode(errors="replace")] = AlertState.from_dict(state)
        elif value is not None:
            self.drift = self.drift.add(json.loads(value))


def install(app: StreamApp) -> None:
    """Add the follower, the /alerts and /reports/drift pages, and the drift and alert
    gauges of /metrics."""
    config = alert_engine(app).config
    alerts_topic = app.tables["alert-engines"].changelog_topic.get_topic_name()
    drift_topic = app.kafka_topics.drift_reports.get_topic_name()
    views = _Views(alerts_topic, app.settings.page_max_keys)
    follower = TopicFollower(
        app.settings.bootstrap_servers, [alerts_topic, drift_topic], app.settings.partitions,
        views.apply, security=app.kafka_security,
    )  # fmt: skip
    app.task(follower.run)
    app.metrics.add_source(
        lambda: [
            gauge_family(
                "stream_app_drift_severity",
                "Each feature in its model's latest drift report: 0 none, 1 warning, 2 critical.",
                ("model_name", "feature"), drift_levels(views.drift.latest).items(),
            ),
            gauge_family(
                "stream_app_alerts_firing", "Alerts firing now across services.",
                ("rule", "severity"), alerts_firing(views.alert_states, config).items(),
            ),
        ]
    )  # fmt: skip

    @app.page("/alerts")
    async def alerts_page(web: Any, request: Any) -> Any:
        overview = alerts_overview(views.alert_states, config, ALERT_SUMMARY_WINDOW)
        return web.json({"caught_up": follower.caught_up, **overview})

    @app.page("/reports/drift")
    async def drift_page(web: Any, request: Any) -> Any:
        return web.json({"caught_up": follower.caught_up, **views.drift.to_dict()})
