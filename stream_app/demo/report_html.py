"""The demo report as one self-contained HTML file: the dashboard's charts, then the text.

The charts are the worker's dashboard's (``stream_app.dashboard``), drawn from what the
demo read back from the report topics, the worker's traffic points (its
``/dashboard/traffic`` page) and its registry view (``/registry``); the text report
follows in full. Nothing in the file is loaded from elsewhere and it has no script.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from stream_app.dashboard.history import ReportHistory
from stream_app.dashboard.page import DashboardInputs, render_page
from stream_app.dashboard.traffic import TrafficPoint

__all__ = ["REPORT_FILE", "html_report", "write_html_report"]

REPORT_FILE = "report.html"  # under the demo's data directory: data/demo/report.html


def html_report(
    history: ReportHistory,
    traffic_page: Mapping[str, Any] | None,
    registry_page: Mapping[str, Any] | None,
    text: str,
    now: datetime,
) -> str:
    """The HTML of the report; a page the worker did not answer leaves its panel empty.

    Example:
        >>> from datetime import UTC
        >>> now = datetime(2026, 3, 2, tzinfo=UTC)
        >>> page = html_report(ReportHistory(), None, None, "a < b", now)
        >>> "no A/B report yet" in page, "<pre>a &lt; b</pre>" in page, "<script" in page
        (True, True, False)
    """
    points = [TrafficPoint.from_dict(p) for p in (traffic_page or {}).get("points", ())]
    inputs = DashboardInputs(
        traffic=points,
        registry=registry_page,
        ab=history.messages("ab"),
        drift=history.messages("drift"),
        alerts=history.messages("alerts"),
        notes=("Traffic: the demo worker's, per interval of wall-clock time.",),
    )
    page = render_page(inputs, title="stream-app demo report", now=now)
    text_section = (f'<section id="report-text" style="grid-column:1/-1"><h2>Report</h2>'
                    f"<pre>{html.escape(text)}</pre></section>")  # fmt: skip
    return page.replace("</main>", text_section + "</main>", 1)


def write_html_report(path: Path, page: str) -> Path:
    """Write ``page`` to ``path`` (its directory made if needed) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
