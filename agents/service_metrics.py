"""The app's own service metrics: monitor events -> per-window ServiceMetrics.

Per window of ``metrics_window_seconds`` (event time): latency p99 over every variant's
latency sketch, error rate (rejected + failed over every request) and prediction volume
(scored requests), published to service-metrics under the service ``app_id`` and
stamped at the window's end, once the watermark has passed it by the grace, or once
the requests have been silent for a window plus the grace by the worker's clock (the
silence ticks of ``agents/silence.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from agents.driver import Message, SkipLog, StatefulStep
from agents.faust_step import install_step
from agents.support import monitor_route
from schemas.codec import encode
from schemas.monitor import BatchSummary, RequestCounted, SilenceTick
from stream_app.app import StreamApp
from stream_app.monitoring.service_windows import (
    MetricsWindowConfig,
    MetricsWindows,
    WindowMetrics,
    metrics_fold,
)

__all__ = ["install"]


def install(app: StreamApp) -> None:
    """Add the service-metrics agent and its table ``service-metric-windows``."""
    settings, topics = app.settings, app.kafka_topics
    config = MetricsWindowConfig(
        window=timedelta(seconds=settings.metrics_window_seconds),
        grace=timedelta(seconds=settings.window_grace_seconds),
    )
    service = settings.app_id
    metrics_topic = topics.service_metrics.get_topic_name()
    skips = SkipLog("service-metric-windows")

    async def emit(closed: Sequence[WindowMetrics]) -> list[list[Message]]:
        return [
            [Message(metrics_topic, service.encode(), encode(w.to_service_metrics(service)))]
            for w in closed
        ]

    step = StatefulStep(
        name="service-metric-windows",
        table="service-metric-windows",
        # Outcomes are the A/B agent's business. The clock (the fold's ``now``) is the
        # default, the records' Kafka timestamps: when each request was counted, and
        # when each tick was sent.
        route=monitor_route(skips, (BatchSummary, RequestCounted, SilenceTick)),
        fold=metrics_fold(config),
        load=MetricsWindows.from_dict,
        dump=MetricsWindows.to_dict,
        emit=emit,
        skips=skips,
    )
    install_step(app, step, [topics.monitor_events.get_topic_name()])
