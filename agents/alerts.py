"""Alerts: service metrics (upstream's and the app's own) -> AlertEngine per service -> alerts.

The table ``alert-engines`` holds one AlertState per service name, keyed by it, folded by
the batch driver with :func:`~stream_app.monitoring.alerts.alert_fold`. The service is
the message key, else the value's ``service``; a message whose key is missing or sits
on another partition than its key's (a producer with another partitioner) is re-sent,
keyed, through the internal metrics-rekeyed topic (keeping its Kafka timestamp), so a
service's state is only ever written from its own partition. A message stamped more than
``STREAM_MAX_EVENT_TIME_AHEAD_SECONDS`` after it reached the broker is skipped and
counted (``timestamp_ahead``): the engine ignores anything older than the newest
timestamp it has seen, so one such message would silence the service until then. A
service not heard from for ``STREAM_ALERT_IDLE_SECONDS`` with nothing firing is forgotten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from agents.driver import Keyed, Message, SkipLog, StatefulStep, origin_of, received_at
from agents.faust_step import install_step
from schemas.codec import encode
from schemas.events import ServiceMetrics
from stream_app.app import StreamApp
from stream_app.config import env_name
from stream_app.errors import ConfigError
from stream_app.fold import Fold, Folded
from stream_app.monitoring.alert_catalog import alert_message, configured_rules
from stream_app.monitoring.alerts import AlertEngine, AlertEvent, AlertState, alert_fold
from stream_app.partitioner import default_partition

__all__ = ["alert_engine", "install"]

Observation = tuple[str, datetime, Mapping[str, float]]


def alert_engine(app: StreamApp, state: AlertState | None = None) -> AlertEngine:
    """An engine with the rules of ``STREAM_ALERT_RULES`` (or the shipped ones) and the
    configured cooldown."""
    settings = app.settings
    try:
        rules = configured_rules(
            settings.alert_rules, settings.ab_max_latency_increase, settings.volume_absent_fraction
        )
    except ValueError as error:  # the file changed since the settings checked it
        raise ConfigError(f"{env_name('alert_rules')}: {error}") from None
    return AlertEngine(rules, timedelta(seconds=settings.alert_cooldown_seconds), state=state)


def install(app: StreamApp) -> None:
    """Add the alert agent and its table ``alert-engines``."""
    settings, topics = app.settings, app.kafka_topics
    skips = SkipLog("alert-engines")
    rekeyed_name = topics.metrics_rekeyed.get_topic_name()
    alerts_topic = topics.alerts.get_topic_name()
    config = alert_engine(app).config
    observe = alert_fold(config)

    @lru_cache(maxsize=4096)
    def service_fold(
        service: str,
    ) -> Fold[AlertState, tuple[datetime, Mapping[str, float]], AlertEvent]:
        # Only the rules whose service pattern the service matches judge it; matched once
        # per service, not per batch.
        return alert_fold(config.for_service(service))

    max_ahead = settings.max_event_time_ahead_seconds

    def route(record: Any) -> Keyed[Observation] | Sequence[Message]:
        try:
            metrics = ServiceMetrics.model_validate_json(record.value or b"")
            service = record.key.decode() if record.key else metrics.service
        except (ValidationError, UnicodeDecodeError) as error:
            skips.skip("invalid service metrics", error)
            return ()
        if not service:
            skips.skip("service metrics without a service name")
            return ()
        key, message = service.encode(), record.message
        received = received_at(message.timestamp)
        if (metrics.timestamp - received).total_seconds() > max_ahead:
            # One message from the future would silence the service's alerts until then.
            skips.skip("timestamp_ahead")
            return ()
        if message.topic != rekeyed_name and (
            record.key != key or message.partition != default_partition(key, settings.partitions)
        ):
            # Its own figures only: non-numeric extras (personal data among them) stay behind.
            own = {"service": service, "timestamp": metrics.timestamp.isoformat(),
                   **metrics.metrics()}  # fmt: skip
            copy = Message(rekeyed_name, key, json.dumps(own).encode(), timestamp=message.timestamp)
            return (copy,)
        where, offset = origin_of(record)
        return Keyed(key, (service, metrics.timestamp, metrics.metrics()), where, offset)

    def fold(
        state: AlertState | None, events: Sequence[Observation], now: float
    ) -> Folded[AlertState, tuple[str, AlertEvent]]:
        if not events:  # expiry: a quiet service with nothing firing is forgotten
            return Folded(observe(state, [], now).state, ())
        service = events[0][0]  # the key: every event of it names the same service
        folded = service_fold(service)(state, [(at, values) for _, at, values in events], now)
        return Folded(folded.state, tuple((service, alert) for alert in folded.results))

    async def emit(alerts: Sequence[tuple[str, AlertEvent]]) -> list[list[Message]]:
        out = []
        for service, alert in alerts:
            fingerprint, value = alert_message(service, alert)
            out.append([Message(alerts_topic, fingerprint.encode(), encode(value))])
        return out

    step = StatefulStep(
        name="alert-engines", table="alert-engines", route=route, fold=fold,
        load=AlertState.from_dict, dump=AlertState.to_dict, emit=emit, skips=skips,
        # A service that sent nothing for this long (broker time) and has nothing firing
        # is forgotten: rows are bounded by the services of the last idle period.
        expire_after=settings.alert_idle_seconds,
    )  # fmt: skip
    install_step(app, step, [topics.service_metrics.get_topic_name(), rekeyed_name])
