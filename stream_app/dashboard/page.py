"""The dashboard as one self-contained HTML page: five panels of inline SVG, no outside file.

:func:`render_page` reads the inputs through the panel adapters (``panel_*``), draws them
(``plots``, ``plots_reports``) and lays the page out. With ``refresh_seconds`` the page
carries a small script that fetches the page again at that pace and swaps its panels
in (the worker's live dashboard); without it the page is static (the demo's report).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stream_app.dashboard.panel_ab import ABPanel, ab_panel
from stream_app.dashboard.panel_alerts import AlertsPanel, alerts_panel
from stream_app.dashboard.panel_drift import DriftPanel, drift_panel
from stream_app.dashboard.panel_model import ModelPanel, model_panel
from stream_app.dashboard.plots import model_charts, traffic_charts
from stream_app.dashboard.plots_reports import ab_charts, alerts_charts, drift_charts
from stream_app.dashboard.traffic import TrafficPoint

__all__ = ["PANELS", "DashboardInputs", "render_page"]

PANELS = ("traffic", "model", "ab", "drift", "alerts")
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


def _traffic_facts(points: Sequence[TrafficPoint], bound: str) -> str:
    if not points:
        return f'<p class="facts">{_e(bound)}</p>'
    p = points[-1]
    invalid = sum(p.invalid.values())
    figures = (f"last {p.seconds:.0f} s: {p.per_second(p.scored):.1f} scored/s, "
               f"{p.per_second(invalid):.1f} invalid/s, {p.per_second(p.throttled):.1f} "
               f"throttled/s")  # fmt: skip
    if p.lag is not None:
        figures += f", {p.lag} messages behind"
    return f'<p class="facts">{_e(figures)}. {_e(bound)}</p>'


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


def render_page(
    inputs: DashboardInputs,
    *,
    title: str,
    now: datetime,
    bound: str = "",
    refresh_seconds: float | None = None,
) -> str:
    """The whole page. ``bound`` says how much traffic history is kept."""
    model, ab = model_panel(inputs.registry, inputs.refused), ab_panel(inputs.ab)
    drift, alerts = drift_panel(inputs.drift), alerts_panel(inputs.alerts)
    sections = [
        _section("traffic", "Traffic", _traffic_facts(inputs.traffic, bound),
                 traffic_charts(inputs.traffic)),
        _section("model", "Model", _model_facts(model), model_charts(model)),
        _section("ab", "A/B test", _ab_facts(ab), ab_charts(ab)),
        _section("drift", "Drift", _drift_facts(drift), drift_charts(drift)),
        _section("alerts", "Alerts", _alert_facts(alerts), alerts_charts(alerts)),
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
