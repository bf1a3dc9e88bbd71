"""The dashboard as one self-contained HTML page: five panels of inline SVG, no outside file.

:func:`render_page` reads the inputs through the panel adapters (``panel_*``), draws them
(``plots``, ``plots_reports``) and lays the page out. With ``refresh_seconds`` the page
carries a small script that fetches the page again at that pace and swaps its panels
in (the worker's live dashboard); without it the page is static (the demo's report).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stream_app.dashboard.panel_ab import ABPanel, ab_panel
from stream_app.dashboard.panel_alerts import AlertsPanel, alerts_panel
from stream_app.dashboard.panel_drift import DriftPanel, drift_panel
from stream_app.dashboard.panel_model import ModelPanel, model_panel
from stream_app.dashboard.plots import empty, model_charts, traffic_charts
from stream_app.dashboard.plots_reports import ab_charts, alerts_charts, drift_charts
from stream_app.dashboard.traffic import TrafficPoint

__all__ = ["PANELS", "UNREADABLE", "DashboardInputs", "render_page"]

PANELS = ("traffic", "model", "ab", "drift", "alerts")
UNREADABLE = "cannot draw this panel: a message it reads has another shape"
_e = html.escape

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{padding:.6em 1.2em;background:#2f3e46;color:#fff}
header h1{font-size:1.2em;margin:0}header p{margin:.2em 0 0;font-size:.85em;opacity:.85}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(34em,1fr));gap:1em;padding:1em}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em}
section h2{font-size:1.05em;margin:.2em 0 .4em}
svg.chart{width:100%;height:auto;display:block}
p.empty{color:#8a6d3b;background:#fcf8e3;padding:.6em;border-radius:4px}
p.facts,td,th{font-size:.85em}table{border-collapse:collapse}
td,th{padding:.15em .6em;text-align:left}
"""

_SCRIPT = """
setInterval(async () => {
  try {
    const answer = await fetch(location.pathname, {cache: "no-store"});
    if (!answer.ok) return;
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    document.querySelector("main").replaceWith(page.querySelector("main"));
    document.querySelector("header").replaceWith(page.querySelector("header"));
  } catch (error) {
    // The worker may be restarting: the next tick tries again.
  }
}, %d);
"""


@dataclass(frozen=True)
class DashboardInputs:
    """What a dashboard is drawn from: the worker's traffic points, its registry view
    (the /registry dict) and the bundles it refused, and the report messages."""

    traffic: Sequence[TrafficPoint] = ()
    registry: Mapping[str, Any] | None = None
    refused: Sequence[Mapping[str, Any]] = ()
    ab: Sequence[Mapping[str, Any]] = ()
    drift: Sequence[Mapping[str, Any]] = ()
    alerts: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def _section(name: str, title: str, facts: str, charts: Sequence[str]) -> str:
    return (f'<section id="panel-{name}" data-panel="{name}"><h2>{_e(title)}</h2>{facts}'
            + "".join(charts) + "</section>")  # fmt: skip


def _traffic_facts(points: Sequence[TrafficPoint]) -> str:
    if not points:
        return ""
    p = points[-1]
    invalid = sum(p.invalid.values())
    figures = (f"last {p.seconds:.0f} s: {p.per_second(p.scored):.1f} scored/s, "
               f"{p.per_second(invalid):.1f} invalid/s, {p.per_second(p.throttled):.1f} "
               f"throttled/s")  # fmt: skip
    if p.lag is not None:
        figures += f", {p.lag} messages behind"
    return f'<p class="facts">{_e(figures)}.</p>'


def _model_facts(panel: ModelPanel | None) -> str:
    if panel is None:
        return ""
    rows = (("model", panel.model), ("production", panel.production or "none"),
            ("challenger", panel.challenger or "none"))  # fmt: skip
    cells = "".join(f"<tr><th>{name}</th><td>{_e(value)}</td></tr>" for name, value in rows)
    return f"<table>{cells}</table>"


def _ab_facts(panel: ABPanel | None) -> str:
    if panel is None:
        return ""
    return (f'<p class="facts">{_e(panel.model)}: {_e(panel.serving_version)} (A) against '
            f"{_e(panel.challenger_version)} (B), {len(panel.points)} reports. "
            f"<strong>Recommendation: {_e(panel.recommendation)}</strong>: "
            f"{_e(panel.why)}.</p>")  # fmt: skip


def _drift_facts(panel: DriftPanel | None) -> str:
    if panel is None:
        return ""
    drifted = sum(level >= 1 for row in panel.severity for level in row)
    focus = "" if panel.focus is None else f" Below: {panel.focus.feature}, the most drifted."
    return (f'<p class="facts">{len(panel.windows)} windows of {_e(panel.model)}, '
            f"{drifted} feature-windows with a warning or worse.{_e(focus)}</p>")  # fmt: skip


def _alert_facts(panel: AlertsPanel | None) -> str:
    if panel is None:
        return ""
    if not panel.firing:
        return '<p class="facts">Nothing fires now.</p>'
    rows = "".join(
        f"<tr><td>{_e(f.rule)}</td><td>{_e(f.service)}</td><td>{_e(f.severity)}</td>"
        f"<td>{f.since:%Y-%m-%d %H:%M}</td></tr>"
        for f in panel.firing
    )
    return ("<table><tr><th>firing now</th><th>service</th><th>severity</th><th>since</th>"
            f"</tr>{rows}</table>")  # fmt: skip


def _panel(name: str, title: str, draw: Callable[[], tuple[str, Sequence[str]]]) -> str:
    # A message of another shape (a producer's bug, a newer writer) costs its panel only.
    try:
        facts, charts = draw()
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        facts, charts = "", [empty(f"{UNREADABLE} ({type(error).__name__})")]
    return _section(name, title, facts, charts)


def render_page(
    inputs: DashboardInputs,
    *,
    title: str,
    now: datetime,
    refresh_seconds: float | None = None,
) -> str:
    """The whole page; with ``refresh_seconds`` it fetches itself again at that pace."""

    def model() -> tuple[str, list[str]]:
        panel = model_panel(inputs.registry, inputs.refused)
        return _model_facts(panel), model_charts(panel)

    def ab() -> tuple[str, list[str]]:
        panel = ab_panel(inputs.ab)
        return _ab_facts(panel), ab_charts(panel)

    def drift() -> tuple[str, list[str]]:
        panel = drift_panel(inputs.drift)
        return _drift_facts(panel), drift_charts(panel)

    def alerts() -> tuple[str, list[str]]:
        panel = alerts_panel(inputs.alerts)
        return _alert_facts(panel), alerts_charts(panel)

    sections = [
        _panel("traffic", "Traffic",
               lambda: (_traffic_facts(inputs.traffic), traffic_charts(inputs.traffic))),
        _panel("model", "Model", model),
        _panel("ab", "A/B test", ab),
        _panel("drift", "Drift", drift),
        _panel("alerts", "Alerts", alerts),
    ]  # fmt: skip
    notes = "".join(f" {_e(n)}" for n in inputs.notes)
    script = (
        "" if refresh_seconds is None else f"<script>{_SCRIPT % (refresh_seconds * 1000)}</script>"
    )
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty icon of its own, so the browser asks the worker for no /favicon.ico.
        f'<link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>drawn {stamp}.{notes}</p></header>"
        f"<main>{''.join(sections)}</main>{script}</body></html>"
    )
