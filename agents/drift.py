"""Drift: batch summaries -> event-time drift windows -> drift-reports and drift alerts.

One table row per monitor-events key (the model name) holds the pure
:class:`~stream_app.monitoring.drift_windows.DriftWindows`, folded by the batch driver
with :func:`~stream_app.monitoring.drift_windows.drift_fold`. Each closed window is
published to drift-reports (key: model name) once, and one ``drift_severity``
observation per window end (0 clean, 1 warning, 2 critical) goes to service-metrics
under the service ``<app_id>.drift``, where the alert agent turns it into alerts. A
silence tick (``agents/silence.py``) closes the open windows of a silence as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, cast

from agents.driver import Message, Route, SkipLog, StatefulStep
from agents.faust_step import install_step
from agents.support import monitor_route
from schemas.codec import encode
from schemas.metrics import AppServiceMetrics
from schemas.monitor import BatchSummary, SilenceTick
from stream_app.app import StreamApp
from stream_app.monitoring.drift_windows import (
    ClosedDriftWindow,
    DriftWindowConfig,
    DriftWindows,
    drift_fold,
    drift_observations,
)

__all__ = ["drift_service", "install"]


def drift_service(app_id: str) -> str:
    """The service name of the drift observations.

    Example:
        >>> drift_service("stream-app")
        'stream-app.drift'
    """
    return f"{app_id}.drift"


def install(app: StreamApp) -> None:
    """Add the drift agent and its table ``drift-windows``."""
    settings, topics = app.settings, app.kafka_topics
    config = DriftWindowConfig(
        window=timedelta(seconds=settings.drift_window_seconds),
        grace=timedelta(seconds=settings.window_grace_seconds),
    )
    service = drift_service(settings.app_id)
    reports_topic = topics.drift_reports.get_topic_name()
    metrics_topic = topics.service_metrics.get_topic_name()
    skips = SkipLog("drift-windows")

    async def emit(closed: Sequence[ClosedDriftWindow]) -> list[list[Message]]:
        out = [
            [Message(reports_topic, w.model_name.encode(), encode(w.to_message()))] for w in closed
        ]
        first_of_end: dict[object, int] = {}
        for i, window in enumerate(closed):
            first_of_end.setdefault(window.end, i)
        for end, severity in drift_observations(closed):
            metrics = AppServiceMetrics(service=service, timestamp=end, drift_severity=severity)
            value = encode(metrics)
            out[first_of_end[end]].append(Message(metrics_topic, service.encode(), value))
        return out

    step = StatefulStep(
        name="drift-windows",
        table="drift-windows",
        # Only BatchSummary and SilenceTick pass this route; the clock (the fold's
        # ``now``) is the records' Kafka timestamps, when each was sent.
        route=cast(
            Callable[[Any], Route[BatchSummary | SilenceTick]],
            monitor_route(skips, (BatchSummary, SilenceTick)),
        ),
        fold=drift_fold(config),
        load=DriftWindows.from_dict,
        dump=DriftWindows.to_dict,
        emit=emit,
        skips=skips,
    )
    install_step(app, step, [topics.monitor_events.get_topic_name()])
