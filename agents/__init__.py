"""Faust agents: the only place where topics meet domain functions.

Each module is one flow and has ``install(app)``, which adds its agents, tables and
pages to the app. :func:`build_pipeline` installs them all; the worker runs that app.
"""

from __future__ import annotations

from agents import (
    ab_join,
    ab_report,
    alerts,
    dashboard,
    dashboards,
    drift,
    intake,
    registry,
    service_metrics,
    silence,
)
from stream_app.app import StreamApp

__all__ = ["build_pipeline"]


def build_pipeline(app: StreamApp) -> StreamApp:
    """Install every flow of the pipeline on ``app`` and return it."""
    flows = (registry, intake, drift, ab_join, ab_report, service_metrics, alerts, silence)
    for flow in flows:
        flow.install(app)
    dashboards.install(app)  # it reads the alert table, so it comes after alerts
    dashboard.install(app)
    return app
