"""The dashboard's charts: series drawn per panel for a known input, empty states."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stream_app.dashboard.page import PANELS, UNREADABLE, DashboardInputs, render_page
from stream_app.dashboard.panel_ab import ab_panel
from stream_app.dashboard.panel_alerts import alerts_panel
from stream_app.dashboard.panel_drift import drift_panel
from stream_app.dashboard.panel_model import model_panel
from stream_app.dashboard.plots import EMPTY_MODEL, EMPTY_TRAFFIC, model_charts, traffic_charts
from stream_app.dashboard.plots_reports import (
    EMPTY_AB,
    EMPTY_ALERTS,
    EMPTY_DRIFT,
    ab_charts,
    alerts_charts,
    drift_charts,
)
from stream_app.dashboard.traffic import TrafficPoint
from tests.utils.worker import REPO_ROOT

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def series(svg: str, chart: str) -> list[str]:
    """The names of the series drawn in one chart, sorted (SVG puts areas before lines)."""
    return sorted(re.findall(rf'id="series-{chart}-([^"]+)"', svg))


def traffic(n: int = 4, lag: int | None = 3) -> list[TrafficPoint]:
    return [
        TrafficPoint(at=T0.timestamp() + 5 * i, seconds=5.0, scored=10 + i,
                     invalid={"schema": 1, "too_large": i}, throttled=i % 2,
                     latency_p50_ms=2.0 + i, latency_p99_ms=9.0 + i, lag=lag)
        for i in range(n)
    ]  # fmt: skip


def ab_message(i: int, **report: Any) -> dict[str, Any]:
    return {
        "model": "conversion", "serving_version": "1.0.0", "challenger_version": "1.1.0",
        "interval_end": (T0 + timedelta(minutes=5 * i)).isoformat(),
        "report": {
            "conversion_rate_a": 0.1, "conversion_rate_b": 0.12, "n_a": 100 * i + 100,
            "n_b": 100 * i + 100, "conversions_a": 10 * i + 10, "conversions_b": 12 * i + 12,
            "p_value": 0.3, "sequential_p_value": 0.5 / (i + 1), "decided_by": "sequential",
            "srm_p_value": 0.6, "recommendation": "continue", "latency_increase_pct": 5.0,
            **report,
        },
    }  # fmt: skip


def drift_message(hour: int, severity: str, shares: bool = True) -> dict[str, Any]:
    start = T0 + timedelta(hours=hour)
    features = {
        "age": {"severity": "none", "p_value": 0.5},
        "amount": {"severity": severity, "p_value": 0.001 if severity != "none" else 0.4},
    }
    return {
        "window_id": f"conversion|1.0.0|r|{start.isoformat()}", "model_name": "conversion",
        "window_start": start.isoformat(), "window_end": (start + timedelta(hours=1)).isoformat(),
        "severity": severity, "features": features,
        "distribution": {"feature": "amount", "bins": ["< 10", "10..50", ">= 50"],
                         "reference": [0.3, 0.4, 0.3], "current": [0.1, 0.3, 0.6]}
        if shares else None,
    }  # fmt: skip


def alert(kind: str, minute: int, rule: str = "error_rate", service: str = "api") -> dict[str, Any]:
    at = T0 + timedelta(minutes=minute)
    return {"kind": kind, "rule": rule, "service": service, "severity": "warning",
            "value": 0.1, "threshold": 0.05, "timestamp": at.isoformat(),
            "started_at": T0.isoformat(), "fingerprint": f"{service}|{rule}|0"}  # fmt: skip


REGISTRY = {
    "model": "conversion", "production": "1.0.0", "challenger": "1.1.0",
    "versions": [{"version": "1.0.0", "registered_at": T0.isoformat()},
                 {"version": "1.1.0", "registered_at": (T0 + timedelta(minutes=1)).isoformat()}],
    "history": [{"kind": "promoted", "version": "1.0.0",
                 "at": (T0 + timedelta(minutes=2)).isoformat()}],
}  # fmt: skip


def test_traffic_draws_every_fate_and_both_latencies_and_the_lag() -> None:
    charts = traffic_charts(traffic())
    assert len(charts) == 3
    assert series(charts[0], "traffic") == [
        "invalid-schema", "invalid-too_large", "scored", "throttled"
    ]  # fmt: skip
    assert series(charts[1], "latency") == ["p50", "p99"]
    assert series(charts[2], "lag") == ["requests"]


def test_traffic_without_lag_has_no_lag_chart() -> None:
    assert len(traffic_charts(traffic(lag=None))) == 2


def test_model_timeline_has_one_series_per_event_kind() -> None:
    refused = [{"version": "1.2.0", "at": (T0 + timedelta(minutes=3)).isoformat()}]
    (chart,) = model_charts(model_panel(REGISTRY, refused))
    assert series(chart, "model") == ["promoted", "refused", "registered"]


def test_ab_draws_both_arms_with_intervals_and_the_p_values() -> None:
    panel = ab_panel([ab_message(i) for i in (2, 0, 1)])
    assert panel is not None and [p.at.minute for p in panel.points] == [0, 5, 10]
    conversion, p_values = ab_charts(panel)
    assert series(conversion, "ab") == ["interval-A", "interval-B", "rate-A", "rate-B"]
    assert series(p_values, "ab") == ["alpha", "p", "srm", "srm-alpha"]
    assert panel.recommendation == "continue"
    assert panel.why == (
        "B converts better (12.00 % against 10.00 %) but p = 0.167 is not below alpha 0.05 yet"
    )


def test_ab_keeps_only_the_newest_version_pair() -> None:
    old = {**ab_message(5), "challenger_version": "0.9.0"}
    panel = ab_panel([old, ab_message(0), ab_message(1)])
    assert panel is not None
    assert (panel.challenger_version, len(panel.points)) == ("0.9.0", 1)


def test_drift_heat_map_and_the_focus_distributions() -> None:
    messages = [drift_message(0, "none"), drift_message(1, "critical"), drift_message(2, "warning")]
    panel = drift_panel(messages)
    assert panel is not None
    assert panel.features == ("age", "amount")
    assert panel.severity == ((0, 0, 0), (0, 2, 1))
    assert panel.focus is not None and panel.focus.window.startswith("2026-03-02T01")
    heat, focus = drift_charts(panel)
    assert series(heat, "drift") == ["severity"]
    assert series(focus, "drift") == ["current", "reference"]


def test_drift_without_shares_has_no_focus_chart() -> None:
    panel = drift_panel([drift_message(0, "critical", shares=False)])
    assert len(drift_charts(panel)) == 1


def test_alerts_track_per_rule_and_service_and_what_fires_now() -> None:
    events = [alert("firing", 0), alert("escalated", 10), alert("resolved", 30),
              alert("firing", 20, rule="latency_p99", service="checkout")]  # fmt: skip
    panel = alerts_panel(events)
    assert panel is not None
    assert [(t.rule, t.service) for t in panel.tracks] == [
        ("error_rate", "api"), ("latency_p99", "checkout")
    ]  # fmt: skip
    assert [(f.rule, f.service) for f in panel.firing] == [("latency_p99", "checkout")]
    (chart,) = alerts_charts(panel)
    assert series(chart, "alerts") == [
        "0-episodes", "0-escalated", "0-firing", "0-resolved", "1-episodes", "1-firing"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("charts", "text"),
    [
        (traffic_charts([]), EMPTY_TRAFFIC),
        (traffic_charts([TrafficPoint(at=T0.timestamp(), seconds=5.0)]), EMPTY_TRAFFIC),
        (model_charts(None), EMPTY_MODEL),
        (ab_charts(ab_panel([])), EMPTY_AB),
        (drift_charts(drift_panel([])), EMPTY_DRIFT),
        (alerts_charts(alerts_panel([])), EMPTY_ALERTS),
    ],
)
def test_empty_input_gives_the_empty_state_text(charts: list[str], text: str) -> None:
    assert charts == [f'<p class="empty">{text.replace("<", "&lt;")}</p>']
    assert "<svg" not in charts[0]


def test_the_page_has_every_panel_and_no_outside_reference() -> None:
    inputs = DashboardInputs(traffic(), REGISTRY, (), [ab_message(0)],
                             [drift_message(0, "warning")], [alert("firing", 0)])  # fmt: skip
    page = render_page(inputs, title="t", now=T0, refresh_seconds=5)
    assert re.findall(r'data-panel="(\w+)"', page) == list(PANELS)
    assert page.count("<svg") == 9
    assert "setInterval" in page and "5000" in page
    # Only XML namespaces name another address; nothing is loaded from one.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script src" not in page
    assert re.findall(r"<link[^>]*>", page) == ['<link rel="icon" href="data:,">']


def test_a_message_of_another_shape_costs_its_panel_only() -> None:
    broken = {k: v for k, v in ab_message(1).items() if k != "report"}
    page = render_page(DashboardInputs(ab=[ab_message(0), broken], alerts=[alert("firing", 0)]),
                       title="t", now=T0)  # fmt: skip
    ab = page[page.index('data-panel="ab"') : page.index('data-panel="drift"')]
    assert f"{UNREADABLE} (KeyError)" in ab and "<svg" not in ab
    assert 'data-chart="alerts"' in page


def test_an_empty_page_says_what_each_panel_misses() -> None:
    page = render_page(DashboardInputs(), title="t", now=T0)
    for text in (EMPTY_TRAFFIC, EMPTY_MODEL, EMPTY_AB, EMPTY_ALERTS):
        assert text in page
    assert "<svg" not in page and "<script" not in page


def test_the_dashboard_and_the_html_report_import_neither_faust_nor_aiokafka() -> None:
    code = (
        "import sys, stream_app.dashboard.page, stream_app.demo.report_html\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('faust', 'aiokafka')))"
    )
    found = subprocess.run(  # noqa: S603 - this interpreter, a fixed snippet
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert found.stdout.strip() == "[]"
