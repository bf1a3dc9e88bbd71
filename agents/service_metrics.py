"""The app's own service metrics: monitor events -> per-window ServiceMetrics.

Per window of ``metrics_window_seconds`` (event time): latency p99 over every variant's
latency sketch, error rate (rejected + failed over every request) and prediction volume
(scored requests), published to service-metrics under the service ``app_id`` and
stamped at the window's end, once the watermark has passed it by the grace.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from agents.support import SkipLog, decode_monitor_event, deliver, json_table, seen
from schemas.monitor import JoinedOutcome
from stream_app.app import StreamApp
from stream_app.monitoring.service_windows import (
    MetricsWindowConfig,
    MetricsWindows,
    fold_event,
)

__all__ = ["install"]


def install(app: StreamApp) -> None:
    """Add the service-metrics agent and its table ``service-metric-windows``."""
    settings, topics = app.settings, app.kafka_topics
    config = MetricsWindowConfig(
        window=timedelta(seconds=settings.metrics_window_seconds),
        grace=timedelta(seconds=settings.window_grace_seconds),
    )
    windows = json_table(app, "service-metric-windows")
    service = settings.app_id
    skips = SkipLog("service-metrics")

    @app.agent(topics.monitor_events, name="service-metric-windows")
    async def service_metrics(stream: Any) -> None:
        async for event in stream.events():
            key, offset = event.key, event.message.offset
            if key is None:
                skips.skip("monitor event without a key")
                continue
            stored = windows.get(key)
            parsed = decode_monitor_event(event.value, skips)
            if parsed is None or isinstance(parsed, JoinedOutcome) or seen(stored, offset):
                continue  # outcomes are the A/B agent's business
            state = (
                MetricsWindows() if stored is None else MetricsWindows.from_dict(stored["state"])
            )
            try:
                closed, state = fold_event(state, parsed, config)
            except (ValueError, KeyError, TypeError) as error:
                skips.skip("batch summary with malformed latency sketches", error)
                continue
            for window in closed:
                value = json.dumps(window.to_service_metrics(service)).encode()
                await deliver(topics.service_metrics, service.encode(), value)
            windows[key] = {"offset": offset, "state": state.to_dict()}
