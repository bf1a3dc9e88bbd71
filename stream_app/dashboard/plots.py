"""Charts as inline SVG (matplotlib, Agg, no pyplot): traffic and the model's timeline.

Every chart is one SVG string to put in a page as it is; every series drawn is one
artist whose SVG id is ``series-<chart>-<name>`` (what the tests count). A panel with
nothing to draw gives its empty-state text instead, saying what is missing. Drawing
takes :data:`DRAW_LOCK`: matplotlib's settings are global, so two threads must not
draw at once. The A/B, drift and alert charts are in ``plots_reports``.
"""

from __future__ import annotations

import html
import io
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt

matplotlib.use("Agg")  # no display, no GUI toolkit: the figures are only ever saved

from matplotlib.axes import Axes  # noqa: E402 - after choosing the backend
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from stream_app.dashboard.panel_model import ModelPanel  # noqa: E402
from stream_app.dashboard.traffic import TrafficPoint  # noqa: E402

__all__ = [
    "DRAW_LOCK",
    "EMPTY_MODEL",
    "EMPTY_TRAFFIC",
    "empty",
    "figure",
    "model_charts",
    "svg",
    "time_axis",
    "x_times",
    "traffic_charts",
]

DRAW_LOCK = threading.Lock()
EMPTY_TRAFFIC = "no traffic yet: no interval of this worker has closed with requests in it"
EMPTY_MODEL = "no model registered yet: register and promote a bundle (stream-app registry)"
_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
COLOURS = {"A": "#4c72b0", "B": "#dd8452", "scored": "#55a868", "throttled": "#8172b3"}


def empty(message: str) -> str:
    """The HTML of an empty state.

    Example:
        >>> empty("no data yet: <none>")
        '<p class="empty">no data yet: &lt;none&gt;</p>'
    """
    return f'<p class="empty">{html.escape(message)}</p>'


def figure(height: float = 2.6, width: float = 7.0) -> Figure:
    """A new figure of the dashboard's size (inches), laid out tight."""
    return Figure(figsize=(width, height), layout="constrained")


def svg(fig: Figure, name: str) -> str:
    """``fig`` as an ``<svg>`` element: text as text, ids salted by ``name`` (unique per
    page), without the XML preamble and metadata."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = _METADATA.sub("", _PREAMBLE.sub("", buffer.getvalue(), count=1), count=1)
    return text.replace("<svg ", f'<svg class="chart" data-chart="{name}" ', 1)


def x_times(times: Sequence[datetime]) -> npt.NDArray[np.float64]:
    """Times as matplotlib's date numbers (days), for an axis set up by :func:`time_axis`."""
    days: Any = date2num(list(times))  # type: ignore[no-untyped-call]
    return np.asarray(days, dtype=np.float64)


def time_axis(ax: Axes) -> None:
    """Dates on the x axis, as short as they can be."""
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _legend(ax: Axes) -> None:
    ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=4)


def traffic_charts(points: Sequence[TrafficPoint]) -> list[str]:
    """Requests per second by fate, latency p50/p99, and consumer lag when known."""
    if not any(p.scored or p.throttled or p.invalid for p in points):
        return [empty(EMPTY_TRAFFIC)]
    at = x_times([datetime.fromtimestamp(p.at, UTC) for p in points])
    charts = []
    with DRAW_LOCK:
        fig = figure()
        ax = fig.add_subplot()
        ax.plot(at, [p.per_second(p.scored) for p in points], label="scored",
                color=COLOURS["scored"], gid="series-traffic-scored")  # fmt: skip
        reasons = sorted({r for p in points for r in p.invalid})
        for reason in reasons:
            ax.plot(at, [p.per_second(p.invalid.get(reason, 0)) for p in points],
                    label=f"invalid: {reason}", gid=f"series-traffic-invalid-{reason}")  # fmt: skip
        ax.plot(at, [p.per_second(p.throttled) for p in points], label="throttled",
                color=COLOURS["throttled"], gid="series-traffic-throttled")  # fmt: skip
        ax.set_ylabel("requests/s")
        time_axis(ax)
        _legend(ax)
        charts.append(svg(fig, "traffic"))
        timed = [(t, p.latency_p50_ms, p.latency_p99_ms) for t, p in zip(at, points, strict=True)
                 if p.latency_p50_ms is not None and p.latency_p99_ms is not None]  # fmt: skip
        if timed:
            fig = figure()
            ax = fig.add_subplot()
            ax.plot([t for t, _, _ in timed], [p50 for _, p50, _ in timed], label="p50",
                    gid="series-latency-p50")  # fmt: skip
            ax.plot([t for t, _, _ in timed], [p99 for _, _, p99 in timed], label="p99",
                    gid="series-latency-p99")  # fmt: skip
            ax.set_ylabel("scoring latency (ms)")
            time_axis(ax)
            _legend(ax)
            charts.append(svg(fig, "latency"))
        lagged = [(t, p.lag) for t, p in zip(at, points, strict=True) if p.lag is not None]
        if lagged:
            fig = figure(height=1.8)
            ax = fig.add_subplot()
            ax.plot([t for t, _ in lagged], [n for _, n in lagged], label="consumer lag",
                    color="#937860", gid="series-lag-requests")  # fmt: skip
            ax.set_ylabel("messages behind")
            time_axis(ax)
            _legend(ax)
            charts.append(svg(fig, "lag"))
    return charts


_MARKERS = {"registered": "o", "promoted": "^", "rolled_back": "v", "refused": "X"}


def model_charts(panel: ModelPanel | None) -> list[str]:
    """The registry's timeline: one row per version, one marker kind per event kind."""
    if panel is None or not panel.events:
        return [empty(EMPTY_MODEL)]
    versions = sorted({e.version for e in panel.events})
    with DRAW_LOCK:
        fig = figure(height=0.9 + 0.35 * len(versions))
        ax = fig.add_subplot()
        for kind, marker in _MARKERS.items():
            events = [e for e in panel.events if e.kind == kind]
            if events:
                rows = [versions.index(e.version) for e in events]
                ax.plot(x_times([e.at for e in events]), rows, linestyle="none", marker=marker,
                        markersize=9, label=kind.replace("_", " "),
                        gid=f"series-model-{kind}")  # fmt: skip
        ax.set_yticks(range(len(versions)), versions)
        ax.set_ylim(-0.6, len(versions) - 0.4)
        time_axis(ax)
        _legend(ax)
        return [svg(fig, "model")]
