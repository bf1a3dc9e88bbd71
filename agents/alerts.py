"""Alerts: service metrics (upstream's and the app's own) -> AlertEngine per service -> alerts.

The table ``alert-engines`` holds one AlertState per service name, keyed by it. The
service is the message key, else the value's ``service``; a message whose key is
missing or sits on another partition than its key's (a producer with another
partitioner) is re-sent, keyed, through the internal metrics-rekeyed topic, so a
service's state is only ever written from its own partition. One agent reads both
topics, so the updates of one service are applied one at a time.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from agents.support import SkipLog, deliver, json_table
from schemas.events import ServiceMetrics
from stream_app.app import StreamApp
from stream_app.monitoring.alert_catalog import alert_message, pipeline_rules
from stream_app.monitoring.alerts import AlertEngine, AlertState
from stream_app.partitioner import default_partition

__all__ = ["alert_engine", "install"]


def alert_engine(app: StreamApp, state: AlertState | None = None) -> AlertEngine:
    """An engine with the pipeline's rules and the configured cooldown."""
    settings = app.settings
    return AlertEngine(
        pipeline_rules(settings.ab_max_latency_increase),
        timedelta(seconds=settings.alert_cooldown_seconds),
        state=state,
    )


def install(app: StreamApp) -> None:
    """Add the alert agent and its table ``alert-engines``."""
    settings, topics = app.settings, app.kafka_topics
    engines = json_table(app, "alert-engines")
    skips = SkipLog("alerts")
    rekeyed_name = topics.metrics_rekeyed.get_topic_name()
    sources = app.topic(
        topics.service_metrics.get_topic_name(),
        rekeyed_name,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(sources, name="alert-engines")
    async def alerts(stream: Any) -> None:
        async for event in stream.events():
            try:
                metrics = ServiceMetrics.model_validate_json(event.value or b"")
                service = event.key.decode() if event.key else metrics.service
            except (ValidationError, UnicodeDecodeError) as error:
                skips.skip("invalid service metrics", error)
                continue
            if not service:
                skips.skip("service metrics without a service name")
                continue
            key = service.encode()
            message = event.message
            if message.topic != rekeyed_name and (
                event.key != key or message.partition != default_partition(key, settings.partitions)
            ):
                await deliver(topics.metrics_rekeyed, key, event.value)
                continue
            stored = engines.get(key)
            engine = alert_engine(app, None if stored is None else AlertState.from_dict(stored))
            for alert in engine.observe(metrics.timestamp, metrics.metrics()):
                fingerprint, value = alert_message(service, alert)
                await deliver(topics.alerts, fingerprint.encode(), json.dumps(value).encode())
            engines[key] = engine.state.to_dict()
