"""Drift: batch summaries -> event-time drift windows -> drift-reports and drift alerts.

One table row per monitor-events key (the model name) holds the pure
:class:`~stream_app.monitoring.drift_windows.DriftWindows`. Each closed window is
published to drift-reports (key: model name) once, and one ``drift_severity``
observation per window end (0 clean, 1 warning, 2 critical) goes to service-metrics
under the service ``<app_id>.drift``, where the alert agent turns it into alerts.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from agents.support import SkipLog, decode_monitor_event, deliver, json_table, seen
from schemas.events import ServiceMetrics
from schemas.monitor import BatchSummary
from stream_app.app import StreamApp
from stream_app.errors import FeatureMismatchError
from stream_app.monitoring.drift_windows import (
    DriftWindowConfig,
    DriftWindows,
    drift_observations,
    fold_summary,
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
    windows = json_table(app, "drift-windows")
    service = drift_service(settings.app_id)
    skips = SkipLog("drift")

    @app.agent(topics.monitor_events, name="drift-windows")
    async def drift(stream: Any) -> None:
        async for event in stream.events():
            key, offset = event.key, event.message.offset
            if key is None:
                skips.skip("monitor event without a key")
                continue
            stored = windows.get(key)
            summary = decode_monitor_event(event.value, skips)
            if not isinstance(summary, BatchSummary) or seen(stored, offset):
                continue  # other kinds are the other agents' business
            state = DriftWindows() if stored is None else DriftWindows.from_dict(stored["state"])
            try:
                closed, state = fold_summary(state, summary, config)
            except (ValueError, KeyError, TypeError, FeatureMismatchError) as error:
                skips.skip("batch summary whose statistics do not fit its profile", error)
                continue
            for window in closed:
                report = json.dumps(window.to_dict()).encode()
                await deliver(topics.drift_reports, window.model_name.encode(), report)
            for end, severity in drift_observations(closed):
                metrics = ServiceMetrics(service=service, timestamp=end, drift_severity=severity)
                value = metrics.model_dump_json(exclude_none=True).encode()
                await deliver(topics.service_metrics, service.encode(), value)
            windows[key] = {"offset": offset, "state": state.to_dict()}
