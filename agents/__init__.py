"""Faust agents: the only place where topics meet domain functions.

Each module is one flow and has ``install(app)``, which adds its agents, tables and
pages to the app. :func:`build_pipeline` installs them all; the worker runs that app.
"""

from __future__ import annotations

from agents import alerts, dashboards, drift, intake, registry, score, service_metrics
from stream_app.app import StreamApp

__all__ = ["build_pipeline"]


def build_pipeline(app: StreamApp) -> StreamApp:
    """Install every flow of the pipeline on ``app`` and return it."""
    # dashboards reads the alert table, so it comes after alerts.
    for flow in (registry, intake, score, drift, service_metrics, alerts, dashboards):
        flow.install(app)
    return app
